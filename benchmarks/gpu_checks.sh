#!/usr/bin/env bash
# The GPU checks of issue 19 in one call (about 8 minutes on an H100/H200), for a session that is lent a GPU:
#   1. the CUDA-only tests (data placement on the device vs pinned batches, a compiled CUDA run);
#   2. benchmarks/cpu_efficiency.py --device cuda: DeAE and DCGAN steps, fp32 / channels_last / compile / bf16 /
#      bf16 + channels_last, cpu and paper presets;
#   3. Trainer img/s for DeAE and DCGAN (paper presets) at 32 and 64 px, eager and train.compile=true.
# Results go to $OUT (default benchmarks/results). latentforge must be importable: `pip install -e .`, or with no
# index reachable, PYTHONPATH=src plus its dependencies' wheels (pydantic, safetensors, ...).
#
#     OUT=/tmp/out bash benchmarks/gpu_checks.sh
set -u
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,utilization.gpu --format=csv || exit 1
python3 -c "import torch, latentforge; assert torch.cuda.is_available(); print(torch.__version__)" || exit 1

timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_training.py -k "gpu or staged or compiled" \
    > "$OUT/gpu_tests.log" 2>&1
echo "tests rc=$?"; tail -n 5 "$OUT/gpu_tests.log"

timeout 200 python3 benchmarks/cpu_efficiency.py --device cuda --models deae,dcgan --presets cpu,paper \
    --batch 256 --rounds 3 --steps 10 \
    --out "$OUT/gpu_efficiency.json" > "$OUT/gpu_efficiency.log" 2>&1
echo "efficiency rc=$?"; tail -n 20 "$OUT/gpu_efficiency.log"

for m in deae dcgan; do for r in 32 64; do for c in false true; do
  x=""; [ "$m$r" = deae64 ] && x="--set model.enc_widths=[64,128,256,512,1024] --set model.mask_active=[1,4,16,32]"
  run=/tmp/gpu-$m-$r-$c
  # shellcheck disable=SC2086
  timeout 90 python3 -m latentforge train "$m" $x --data emoji --preset paper --steps 200 --out "$run" \
      --no-progress --set data.resolution=$r --set train.compile=$c --set train.log_every=25 \
      --set train.sample_every=100000 --set train.checkpoint_every=100000 > "$OUT/train-$m-$r-$c.log" 2>&1
  echo "$m ${r}px compile=$c rc=$? img/s (last logs):" \
      "$(grep '"kind": "train"' "$run/metrics.jsonl" | tail -n 3 | python3 -c \
         'import sys, json; print([json.loads(l)["img_per_s"] for l in sys.stdin])')" \
      "placement: $(python3 -c "import json; print(json.load(open('$run/run.json')).get('data_placement'))")"
done; done; done
nvidia-smi --query-gpu=memory.used --format=csv
