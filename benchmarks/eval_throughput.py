"""Evaluation throughput on CPU: feature extraction and FID/KID/IS/PRDC/k-NN time for N images, beside references.

What is measured, per N (`--sizes`, default 1,000 and 10,000):
  * extraction     img/s and peak RSS growth of `FeatureExtractor.extract(images)` (batch 200, the library default)
                   on random 32x32x3 images in [-1, 1], each network in its own fresh subprocess:
                   - `lf-bench`: the offline `SmallConvNet(3, 10)` wrapped as `TrainedFeatures` (random weights),
                     128-d features, timed on all N images after a one-batch warm-up;
                   - `inception`: the FID Inception-v3 (`build_inception()`, random weights, wrapped as
                     `InceptionFeatures` like `load_inception` does), input resized to 299x299, 2048-d features and
                     1008 logits. It runs at a few img/s on 2 cores, so only `--inception-n` images (default 200) are
                     timed, after a small warm-up, and the seconds for all N are extrapolated (marked "extrap.").
                   Peak RSS growth: the peak-RSS mark (VmHWM) is reset once the N input images exist (Linux
                   /proc/self/clear_refs), and growth is the peak at the end minus the RSS then, i.e. the network,
                   the extraction's working memory and its output; the input size is shown beside it.
  * metrics        seconds for one call (no repetitions) on float64 arrays, the same arrays for every implementation:
                   features are Gaussian with a random, anisotropic covariance (decaying spectrum, random mixing),
                   "fake" drawn from a slightly perturbed mixing and mean, for D = 128 (offline net) and D = 2048
                   (Inception); 1008 Gaussian logits with a class bias for IS; uniform [-1, 1] 32x32x3 images for the
                   memorisation k-NN. Rows:
                   - FID       `gaussian_stats` x2 + `frechet_distance` (= `fid_from_features`) with its default
                               method and, when it takes `method=`, again with `method="sqrtm"` (pytorch-fid's scipy
                               sqrtm of the non-symmetric 2048x2048 product, 20+ s at D = 2048 on one core; done once
                               per N, as is every other FID);
                   - KID       `kid(n_subsets=100, subset_size=1000)` (subset size clipped to N);
                   - IS        `inception_score(logits, splits=10)` on N x 1008 logits;
                   - PRDC      `prdc(k=5)`;
                   - kNN       `memorisation.knn(samples, train, k=3)`: N samples against N training images in pixel
                               space (3072-d), k=3 as `memorisation_report` uses.
                   All metrics of one N run in one subprocess (ours), torchmetrics' in another, pytorch-fid's in a
                   third; each call's peak RSS growth is measured like the extraction's, from a reset peak mark.
  * references     torchmetrics (FID, KID, IS via a `feature=` module that returns the given arrays, as
                   tests/test_scores.py does; timed as update(real) + update(fake) + compute(), since torchmetrics
                   builds its covariance in update) and, when the throwaway venv `--pf-python` (default
                   /tmp/venv_pf/bin/python, torch + torchvision + pytorch-fid) exists, pytorch-fid's
                   `np.mean`/`np.cov` + `calculate_frechet_distance` on the same arrays (saved with np.save).
                   pytorch-fid needs torchvision, which must never be installed beside latentforge's torch, hence
                   the separate venv.
                   "|diff|" is the absolute difference of the values (FID; KID mean; IS mean). torchmetrics draws its
                   KID subsets with torch.randperm and ours with numpy, so for N > 1000 the KID difference is
                   subset-sampling noise (the JSON holds both stds); for N <= 1000 every subset is the whole set.
                   torchmetrics shuffles the logits before splitting them for IS; ours is given the same permutation.
Random weights give the same arithmetic as trained ones (the random Inception's activations are small, about 1e-8,
but far from float32 denormals), so img/s carries over; the feature values themselves mean nothing.

    python benchmarks/eval_throughput.py                      # N = 1,000 and 10,000, JSON to benchmarks/results/
    python benchmarks/eval_throughput.py --quick              # smoke check: N = 200, 20 Inception images
    python benchmarks/eval_throughput.py --sizes 1000 --threads 1 --out /tmp/eval.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHANNELS, RESOLUTION = 3, 32
D_SMALL, D_INCEPTION, N_LOGITS = 128, 2048, 1008
KID_SUBSETS, KID_SIZE, IS_SPLITS, PRDC_K, KNN_K = 100, 1000, 10, 5, 3
BATCH = 200  # FeatureExtractor.extract's default batch size
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "eval_throughput.json"
DEFAULT_PF_PYTHON = Path("/tmp/venv_pf/bin/python")


def _mem_kib() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB: VmRSS/VmHWM, or ru_maxrss for both where /proc is missing."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return peak, peak


def _reset_peak() -> int:
    """Reset the peak-RSS mark to the current RSS (Linux: write 5 to /proc/self/clear_refs); return the current RSS.
    Where that is not allowed the mark stays, and growth is then measured from the old peak (an underestimate)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return _mem_kib()[1]
    return _mem_kib()[0]


def _measured(fn):
    """(fn(), seconds, peak RSS growth in MiB above the RSS just before the call)."""
    rss0 = _reset_peak()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    return out, dt, (_mem_kib()[1] - rss0) / 1024


def _load(data: Path, name: str, n: int):
    import numpy as np
    return np.array(np.load(data / f"{name}.npy", mmap_mode="r")[:n])  # a private in-memory copy of the first n rows


# ------------------------------------------------------------------------------------------------ workers


def extract_worker(args: argparse.Namespace) -> dict:
    """Feature extraction for one network at one N, in this (fresh) process."""
    import torch

    from latentforge.metrics.features.inception import InceptionFeatures, build_inception
    from latentforge.metrics.features.trained import SmallConvNet, TrainedFeatures

    if args.threads:
        torch.set_num_threads(args.threads)
    rss_import = _mem_kib()[0]
    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.n, CHANNELS, RESOLUTION, RESOLUTION, generator=g) * 2 - 1
    rss0 = _reset_peak()  # peak growth counts the network, the warm-up, the extraction and its output
    torch.manual_seed(0)
    if args.worker == "extract-lf":
        ex = TrainedFeatures(SmallConvNet(CHANNELS, 10), CHANNELS, "lf-bench", "random", {})
        timed, warm = args.n, min(BATCH, args.n)
    else:
        ex = InceptionFeatures(build_inception().to("cpu"), fingerprint="random")  # as load_inception wraps it
        timed, warm = min(args.inception_n, args.n), 4
    ex.extract(images[:warm])  # warm-up
    t0 = time.perf_counter()
    feats = ex.extract(images[:timed])
    dt = time.perf_counter() - t0
    rss1 = _mem_kib()[1]
    return {
        "network": ex.name, "label": ex.label, "n": args.n, "timed_images": timed, "warmup_images": warm,
        "batch": BATCH, "seconds": dt, "img_per_s": timed / dt, "seconds_for_n": args.n / (timed / dt),
        "extrapolated": timed < args.n, "dim": int(feats.pool.shape[1]),
        "logits": None if feats.logits is None else int(feats.logits.shape[1]),
        "input_mib": images.numel() * images.element_size() / 2**20,
        "peak_rss_growth_mib": (rss1 - rss0) / 1024, "rss_after_imports_mib": rss_import / 1024,
        "rss_with_inputs_mib": rss0 / 1024,
        "peak_rss_total_mib": rss1 / 1024, "threads": torch.get_num_threads(),
    }


def ours_worker(args: argparse.Namespace) -> dict:
    """latentforge's metric functions at one N."""
    import inspect

    import torch

    from latentforge.metrics.memorisation import knn
    from latentforge.metrics.scores import frechet_distance, gaussian_stats, inception_score, kid, prdc

    if args.threads:
        torch.set_num_threads(args.threads)
    n, data = args.n, Path(args.data)
    arrays = {name: _load(data, name, n) for name in
              ("real128", "fake128", "real2048", "fake2048", "logits", "px_fake", "px_train")}
    torch.manual_seed(0)
    perm = torch.randperm(n).numpy()  # the shuffle torchmetrics' IS draws after torch.manual_seed(0)
    logits = arrays["logits"][perm]
    # frechet_distance's default method, plus the pytorch-fid-style scipy sqrtm when it offers a choice
    method = inspect.signature(frechet_distance).parameters.get("method")
    fid_methods = [None] if method is None else [method.default] + [m for m in ("sqrtm",) if m != method.default]
    out = {}
    for d in (D_SMALL, D_INCEPTION):
        real, fake = arrays[f"real{d}"], arrays[f"fake{d}"]
        for i, m in enumerate(fid_methods):
            kw = {} if i == 0 else {"method": m}  # the first is the default: called exactly as fid_from_features
            (s_real, s_fake), t_stats, mem_stats = _measured(lambda: (gaussian_stats(real), gaussian_stats(fake)))
            fid, t_dist, mem_dist = _measured(lambda: frechet_distance(*s_real, *s_fake, **kw))
            out[f"fid{d}" + ("" if i == 0 else f"_{m}")] = {
                "value": fid, "method": m or "sqrtm", "default_method": i == 0, "seconds": t_stats + t_dist,
                "stats_seconds": t_stats, "distance_seconds": t_dist, "peak_rss_growth_mib": max(mem_stats, mem_dist)}
        (mean, std), t, mem = _measured(lambda: kid(real, fake, n_subsets=KID_SUBSETS, subset_size=KID_SIZE))
        out[f"kid{d}"] = {"value": mean, "std": std, "seconds": t, "peak_rss_growth_mib": mem,
                          "subsets": KID_SUBSETS, "subset_size": min(KID_SIZE, n)}
        res, t, mem = _measured(lambda: prdc(real, fake, k=PRDC_K))
        out[f"prdc{d}"] = {"value": res, "seconds": t, "peak_rss_growth_mib": mem, "k": PRDC_K}
    (mean, std), t, mem = _measured(lambda: inception_score(logits, splits=IS_SPLITS))
    out["is1008"] = {"value": mean, "std": std, "seconds": t, "peak_rss_growth_mib": mem, "splits": IS_SPLITS}
    px_fake, px_train = torch.from_numpy(arrays["px_fake"]), torch.from_numpy(arrays["px_train"])
    (dist, _), t, mem = _measured(lambda: knn(px_fake, px_train, k=KNN_K))
    out["knn3072"] = {"value": float(dist[:, 0].median()), "value_is": "median nearest distance", "seconds": t,
                      "peak_rss_growth_mib": mem, "k": KNN_K}
    return {"impl": "ours", "n": n, "metrics": out, "threads": torch.get_num_threads()}


def tm_worker(args: argparse.Namespace) -> dict:
    """torchmetrics' FID, KID and IS at one N, fed the same arrays through an identity feature module."""
    import warnings

    import torch
    import torchmetrics
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore
    from torchmetrics.image.kid import KernelInceptionDistance

    warnings.filterwarnings("ignore", message="Metric `.*` will save all extracted features")

    class Given(torch.nn.Module):
        """Feature 'network' that returns its input, so torchmetrics sees exactly our feature arrays."""

        def __init__(self, d: int):
            super().__init__()
            self.num_features = d

        def forward(self, x):
            return x

    if args.threads:
        torch.set_num_threads(args.threads)
    n, data = args.n, Path(args.data)
    arrays = {name: torch.from_numpy(_load(data, name, n)) for name in
              ("real128", "fake128", "real2048", "fake2048", "logits")}
    out = {}
    for d in (D_SMALL, D_INCEPTION):
        real, fake = arrays[f"real{d}"], arrays[f"fake{d}"]

        def fid():
            m = FrechetInceptionDistance(feature=Given(d))
            m.update(real, real=True)
            m.update(fake, real=False)
            return float(m.compute())

        def kid():
            m = KernelInceptionDistance(feature=Given(d), subsets=KID_SUBSETS, subset_size=min(KID_SIZE, n))
            m.update(real, real=True)
            m.update(fake, real=False)
            torch.manual_seed(0)
            mean, std = m.compute()
            return float(mean), float(std)

        value, t, mem = _measured(fid)
        out[f"fid{d}"] = {"value": value, "seconds": t, "peak_rss_growth_mib": mem}
        (mean, std), t, mem = _measured(kid)
        out[f"kid{d}"] = {"value": mean, "std": std, "seconds": t, "peak_rss_growth_mib": mem}

    def inception_score():
        m = InceptionScore(feature=Given(N_LOGITS), splits=IS_SPLITS)
        m.update(arrays["logits"])
        torch.manual_seed(0)
        mean, std = m.compute()
        return float(mean), float(std)

    (mean, std), t, mem = _measured(inception_score)
    out["is1008"] = {"value": mean, "std": std, "seconds": t, "peak_rss_growth_mib": mem}
    return {"impl": "torchmetrics", "version": torchmetrics.__version__, "n": n, "metrics": out,
            "threads": torch.get_num_threads()}


def pf_worker(args: argparse.Namespace) -> dict:
    """pytorch-fid's FID at one N; runs under the throwaway venv's python (it needs torchvision)."""
    import importlib.metadata
    import warnings

    import numpy as np
    from pytorch_fid.fid_score import calculate_frechet_distance

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # it passes sqrtm(disp=False)
    n, data = args.n, Path(args.data)
    arrays = {name: _load(data, name, n) for name in ("real128", "fake128", "real2048", "fake2048")}
    out = {}
    for d in (D_SMALL, D_INCEPTION):
        real, fake = arrays[f"real{d}"], arrays[f"fake{d}"]
        # calculate_activation_statistics' last two lines, then the distance
        (mu1, s1, mu2, s2), t_stats, mem_stats = _measured(lambda: (
            np.mean(real, axis=0), np.cov(real, rowvar=False), np.mean(fake, axis=0), np.cov(fake, rowvar=False)))
        value, t_dist, mem_dist = _measured(lambda: float(calculate_frechet_distance(mu1, s1, mu2, s2)))
        out[f"fid{d}"] = {"value": value, "seconds": t_stats + t_dist, "stats_seconds": t_stats,
                          "distance_seconds": t_dist, "peak_rss_growth_mib": max(mem_stats, mem_dist)}
    return {"impl": "pytorch-fid", "version": importlib.metadata.version("pytorch-fid"), "n": n, "metrics": out,
            "python": sys.executable}


WORKERS = {"extract-lf": extract_worker, "extract-inception": extract_worker, "ours": ours_worker,
           "tm": tm_worker, "pf": pf_worker}


# ------------------------------------------------------------------------------------------------ data


def make_data(path: Path, n: int, seed: int = 0) -> None:
    """Every array the metric workers read, for the largest N (workers take the first n rows)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for d in (D_SMALL, D_INCEPTION):
        spec = (1.0 + np.arange(d)) ** -0.5  # anisotropic: per-direction scale decays like 1/sqrt(i)
        mix = rng.standard_normal((d, d)) / np.sqrt(d)  # random mixing -> dense random covariance
        mix_fake = mix + 0.1 * rng.standard_normal((d, d)) / np.sqrt(d)
        mu = np.abs(rng.standard_normal(d)) * 0.5
        np.save(path / f"real{d}.npy", mu + (rng.standard_normal((n, d)) * spec) @ mix)
        np.save(path / f"fake{d}.npy", mu + 0.02 * rng.standard_normal(d)
                + (rng.standard_normal((n, d)) * (1.05 * spec)) @ mix_fake)
    np.save(path / "logits.npy", 3.0 * rng.standard_normal((n, N_LOGITS)) + 2.0 * rng.standard_normal(N_LOGITS))
    for name in ("px_fake", "px_train"):
        np.save(path / f"{name}.npy", rng.uniform(-1, 1, (n, CHANNELS, RESOLUTION, RESOLUTION)).astype(np.float32))


# ------------------------------------------------------------------------------------------------ driver


def _run(cmd: list[str], what: str, env: dict) -> dict:
    print(f"[{what}] running ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"[{what}] failed:\n{proc.stderr}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_seconds"] = time.perf_counter() - t0  # including interpreter start and imports
    return res


def _fmt(x: float | None, spec: str = ".3g", width: int = 9) -> str:
    if x is None:
        return f"{'-':>{width}}"
    return f"{format(x, spec):>{width}}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000", help="comma-separated N (images / feature rows)")
    p.add_argument("--inception-n", type=int, default=200, help="images actually timed through Inception per N")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads and OMP/OPENBLAS/MKL_NUM_THREADS for every worker (default: library "
                        "defaults, i.e. all cores)")
    p.add_argument("--pf-python", type=Path, default=DEFAULT_PF_PYTHON,
                   help="python of a venv with pytorch-fid (and torchvision); skipped if missing")
    p.add_argument("--quick", action="store_true", help="smoke check: N = 200 only, 20 Inception images")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)  # internal
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    sizes = [200] if args.quick else [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) <= PRDC_K:
        p.error(f"--sizes: need N > {PRDC_K}")
    if args.quick:
        args.inception_n = min(args.inception_n, 20)
    env = dict(os.environ)
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.threads)
    pf_python = args.pf_python if args.pf_python.is_file() else None
    script = str(Path(__file__).resolve())

    def cmd(python, worker: str, n: int, data: str | None = None) -> list[str]:
        c = [str(python), script, "--worker", worker, "--n", str(n), "--inception-n", str(args.inception_n)]
        c += ["--threads", str(args.threads)] if args.threads else []
        return c + (["--data", data] if data else [])

    t_start, load_before = time.perf_counter(), os.getloadavg()
    extraction, metrics = [], []
    tmp = Path(tempfile.mkdtemp(prefix="lf_eval_bench_"))
    try:
        print(f"[data] generating arrays for N={max(sizes)} in {tmp} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        make_data(tmp, max(sizes))
        data_seconds = time.perf_counter() - t0
        for n in sizes:
            for worker in ("extract-lf", "extract-inception"):
                extraction.append(_run(cmd(sys.executable, worker, n), f"{worker} N={n}", env))
            row = {"n": n, "ours": _run(cmd(sys.executable, "ours", n, str(tmp)), f"metrics ours N={n}", env),
                   "torchmetrics": _run(cmd(sys.executable, "tm", n, str(tmp)), f"metrics torchmetrics N={n}", env)}
            if pf_python:
                row["pytorch-fid"] = _run(cmd(pf_python, "pf", n, str(tmp)), f"metrics pytorch-fid N={n}", env)
            metrics.append(row)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load_after, total_seconds = os.getloadavg(), time.perf_counter() - t_start

    import torch
    import torchmetrics

    threads = extraction[0]["threads"]
    cpu = platform.processor() or platform.machine()
    la = lambda t: "/".join(f"{v:.2f}" for v in t)  # noqa: E731

    print(f"\nFeature extraction, 32x32x3 images in [-1, 1], random weights, batch {BATCH}, fp32, CPU ({cpu}), "
          f"torch {torch.__version__}, threads={threads}")
    head = (f"{'N':>7}  {'network':<28} {'D':>5} {'img/s':>9} {'timed':>6} {'s for N':>16} {'input MiB':>10} "
            f"{'peak RSS +MiB':>14}")
    print(head + "\n" + "-" * len(head))
    for r in extraction:
        name = "lf-bench SmallConvNet (32px)" if r["network"] == "lf-bench" else "FID Inception-v3 (299px)"
        s_for_n = f"{r['seconds_for_n']:.1f}" + (" (extrap.)" if r["extrapolated"] else "")
        print(f"{r['n']:>7,}  {name:<28} {r['dim']:>5} {r['img_per_s']:>9.1f} {r['timed_images']:>6} {s_for_n:>16} "
              f"{r['input_mib']:>10.1f} {r['peak_rss_growth_mib']:>14.0f}")
    print(f"Inception: only {args.inception_n} images per N are timed (after a {extraction[1]['warmup_images']}-image "
          f"warm-up); 's for N' is N / (img/s), extrapolated. peak RSS +MiB: growth once the inputs exist.")

    pf_ver = metrics[0]["pytorch-fid"]["version"] if pf_python else None
    print(f"\nMetric time (s, one call each) on float64 arrays; ours = latentforge.metrics, tm = torchmetrics "
          f"{torchmetrics.__version__}, pf = " + (f"pytorch-fid {pf_ver} ({pf_python})" if pf_python else
                                                  f"pytorch-fid: skipped, {args.pf_python} not found"))
    head = (f"{'N':>7}  {'metric':<16} {'D':>5} {'ours s':>8} {'tm s':>8} {'ours/tm':>8} {'|diff| tm':>9} "
            f"{'pf s':>8} {'ours/pf':>8} {'|diff| pf':>9} {'ours MiB':>9} {'tm MiB':>7}  value (ours)")
    print(head + "\n" + "-" * (len(head) + 24))
    names = {"kid": f"KID {KID_SUBSETS}x{KID_SIZE}", "is": f"IS {IS_SPLITS} splits", "prdc": f"PRDC k={PRDC_K}",
             "knn": f"kNN k={KNN_K} pixels"}
    for row in metrics:
        n = row["n"]
        for key, ours in row["ours"]["metrics"].items():
            base, _, variant = key.partition("_")  # e.g. "fid2048_sqrtm": ours with method="sqrtm" vs the same refs
            kind, d = base.rstrip("0123456789"), base.lstrip("abcdefghijklmnopqrstuvwxyz")
            cols, tm_mem = [], None
            for impl in ("torchmetrics", "pytorch-fid"):
                ref = row.get(impl, {}).get("metrics", {}).get(base)
                if ref is None:
                    cols += [_fmt(None, width=8), _fmt(None, width=8), _fmt(None)]
                    continue
                ours.setdefault("vs", {})[impl] = cmp = {"ratio_ours_over_ref": ours["seconds"] / ref["seconds"],
                                                         "abs_diff": abs(ours["value"] - ref["value"])}
                cols += [_fmt(ref["seconds"], ".2f", 8), _fmt(cmp["ratio_ours_over_ref"], ".2f", 8),
                         _fmt(cmp["abs_diff"], ".1e")]
                tm_mem = ref["peak_rss_growth_mib"] if impl == "torchmetrics" else tm_mem
            v = ours["value"]
            if kind == "prdc":
                value = "P/R/D/C " + "/".join(f"{v[k]:.3f}" for k in ("precision", "recall", "density", "coverage"))
            elif kind == "knn":
                value = f"median NN dist {v:.3f}"
            elif kind in ("kid", "is"):
                value = f"{v:.6g} +- {ours['std']:.2g}"
            else:
                value = f"{v:.6g} (stats {ours['stats_seconds']:.2f} s + distance {ours['distance_seconds']:.2f} s)"
            name = f"FID {ours['method']}" if kind == "fid" else names[kind]
            print(f"{n:>7,}  {name:<16} {d:>5} {ours['seconds']:>8.2f} {' '.join(cols)} "
                  f"{ours['peak_rss_growth_mib']:>9.0f} {_fmt(tm_mem, '.0f', 7)}  {value}")
    fid_rows = [k for k in metrics[0]["ours"]["metrics"] if k.startswith("fid")]
    default = metrics[0]["ours"]["metrics"][fid_rows[0]]["method"]
    print(f"FID: ours = fid_from_features (frechet_distance's default, method={default!r})"
          + (", then method='sqrtm'" if len(fid_rows) > 2 else "")
          + "; tm: torch.linalg.eigvals; pf: scipy sqrtm. Each is computed once per N. tm/pf FID times include "
          "building the covariance (tm: in update()).\nKID |diff| for N > 1000: different random subsets (torch vs "
          "numpy draws). MiB: peak RSS growth of that one call above the RSS just before it (inputs excluded).")

    record = {
        "benchmark": "eval_throughput", "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "torch": torch.__version__, "torchmetrics": torchmetrics.__version__, "pytorch_fid": pf_ver,
        "pytorch_fid_python": str(pf_python) if pf_python else None, "python": platform.python_version(),
        "device": "cpu", "device_name": cpu, "threads": threads, "threads_flag": args.threads,
        "resolution": RESOLUTION, "channels": CHANNELS, "batch": BATCH, "inception_timed_images": args.inception_n,
        "sizes": sizes, "quick": args.quick, "data_generation_seconds": data_seconds,
        "total_seconds": total_seconds, "loadavg_before": load_before, "loadavg_after": load_after,
        "extraction": extraction, "metrics": metrics,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"\nload average (1/5/15 min): before {la(load_before)}, after {la(load_after)} "
          f"(on CPU, other busy processes can slow multi-threaded steps many-fold); total {total_seconds:.0f} s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
