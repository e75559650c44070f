"""Training behaviour: memorisation, exact resume, fresh samples, interruption."""

import json

import numpy as np
import pytest
import torch

import latentforge
from latentforge.api import load_run
from latentforge.data import load_dataset
from latentforge.metrics.pixel import mean_pairwise_distance, rms_distance

from conftest import TINY, train_losses




def test_memorises_training_examples_from_their_patterns(tmp_path):
    """On 64 images, each example's own pattern must reconstruct it far better than another example's pattern."""
    out = tmp_path / "run"
    res = latentforge.train("deae", data="digits", steps=300, out=out, preset="tiny", progress=False,
                            overrides=TINY + ["train.batch_size=32", "data.limit=64", "train.log_every=50"])
    loaded = load_run(out)
    data = load_dataset(loaded.cfg.data)
    idx = np.arange(64)
    rec = loaded.task.reconstruct(idx)
    own = rms_distance(rec, data.get(idx))
    wrong = rms_distance(rec, data.get(np.roll(idx, 1)))  # = example i decoded from pattern i-1's viewpoint
    assert own.mean() < 0.5 * wrong.mean()
    assert (own < wrong).float().mean() > 0.9
    losses = train_losses(out)
    assert losses[-1] < 0.5 * losses[0]
    assert res.summary["recon_rms_own_pattern"] == pytest.approx(float(own.mean()), rel=1e-4)


def test_fresh_patterns_give_distinct_images(tmp_path):
    out = tmp_path / "run"
    latentforge.train("deae", data="digits", steps=40, out=out, preset="tiny", progress=False, overrides=TINY)
    task = load_run(out).task
    a = task.sample(32, seed=0)
    assert a.shape == (32, 1, 16, 16) and a.min() >= -1 and a.max() <= 1
    assert mean_pairwise_distance(a) > 0.01
    assert len(torch.unique(a.flatten(1), dim=0)) == 32
    assert torch.equal(a, task.sample(32, seed=0))  # reproducible
    assert not torch.equal(a, task.sample(32, seed=1))
    assert torch.equal(task.sample(8, seed=0), a[:8])  # small requests see full-batch statistics
    running = task.sample(8, seed=0, bn="running")
    assert running.shape == (8, 1, 16, 16) and not torch.equal(running, a[:8])
    interp = task.interpolate(pairs=2, steps=5)
    assert interp.shape == (10, 1, 16, 16)
    ends = rms_distance(interp[0:1], interp[4:5])
    assert rms_distance(interp[0:1], interp[1:2]) < ends  # neighbours along the path are closer than the ends


def test_resume_repeats_the_uninterrupted_run(tmp_path):
    sets = TINY + ["train.checkpoint_every=5"]
    full, part = tmp_path / "full", tmp_path / "part"
    latentforge.train("deae", data="digits", steps=12, out=full, preset="tiny", progress=False, overrides=sets)
    latentforge.train("deae", data="digits", steps=12, out=part, preset="tiny", progress=False, overrides=sets,
                      until_step=7)
    assert [p.name for p in (part / "checkpoints").glob("*.safetensors")] == ["step_0000007.safetensors"] or \
        (part / "checkpoints" / "step_0000007.safetensors").is_file()
    latentforge.train("deae", out=part, resume=True, progress=False)
    a, b = train_losses(full), train_losses(part)
    assert len(a) == len(b) == 12
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    wa = load_run(full).task.net.state_dict()
    wb = load_run(part).task.net.state_dict()
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6) for k in wa)


def test_keyboard_interrupt_saves_a_checkpoint(tmp_path, monkeypatch):
    from latentforge.train import loop

    real = loop.Trainer.fit

    def interrupting_fit(self, *a, **k):
        def on_step(step, logs):
            if step == 4:
                raise KeyboardInterrupt
        return real(self, *a, on_step=on_step, **k)

    monkeypatch.setattr(loop.Trainer, "fit", interrupting_fit)
    res = latentforge.train("deae", data="digits", steps=20, out=tmp_path / "r", preset="tiny", progress=False,
                            overrides=TINY)
    assert res.interrupted and res.step == 4
    assert (tmp_path / "r" / "checkpoints" / "step_0000004.safetensors").is_file()


def test_refuses_to_overwrite_and_checks_resume(tmp_path):
    out = tmp_path / "r"
    latentforge.train("deae", data="digits", steps=2, out=out, preset="tiny", progress=False, overrides=TINY)
    with pytest.raises(latentforge.ConfigError, match="already holds a run"):
        latentforge.train("deae", data="digits", steps=2, out=out, preset="tiny", progress=False, overrides=TINY)
    with pytest.raises(latentforge.CheckpointError, match="model.latent_dim"):
        latentforge.train("deae", out=out, resume=True, progress=False, overrides=["model.latent_dim=8"])
    with pytest.raises(latentforge.CheckpointError, match="no run"):
        latentforge.train("deae", out=tmp_path / "none", resume=True, progress=False)


def test_cluster_variant_trains_and_reloads(tmp_path):
    out = tmp_path / "r"
    latentforge.train("deae", data="digits", steps=3, out=out, preset="tiny", progress=False,
                      overrides=TINY + ["model.mask_clusters=4", "data.limit=40"])
    task = load_run(out).task
    clusters = task.patterns.clusters
    assert clusters is not None and clusters.shape == (40,) and set(clusters.tolist()) == {0, 1, 2, 3}
    first = task.patterns.for_examples(np.arange(40))[0].argmax(1).numpy()
    assert np.array_equal(first // 4, clusters)  # 16 first-level channels, 4 per cluster
    assert task.sample(4).shape == (4, 1, 16, 16)


def test_a_clustered_deae_resumes_from_its_saved_ids_and_only_on_its_own_data(tmp_path, monkeypatch):
    over = TINY + ["model.mask_clusters=4", "data.limit=40", "train.checkpoint_every=2"]
    full, part = tmp_path / "full", tmp_path / "part"
    latentforge.train("deae", data="digits", steps=4, out=full, preset="tiny", progress=False, overrides=over)
    latentforge.train("deae", data="digits", steps=4, out=part, preset="tiny", progress=False, overrides=over,
                      until_step=2)

    def no_kmeans(*args, **kwargs):
        raise AssertionError("k-means ran again on resume")
    monkeypatch.setattr("latentforge.tasks.deae.kmeans_clusters", no_kmeans)
    latentforge.train("deae", out=part, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(part), train_losses(full), rtol=1e-5, atol=1e-7)
    assert np.array_equal(load_run(part).task.patterns.clusters, load_run(full).task.patterns.clusters)
    before = (part / "metrics.jsonl").read_text()
    with pytest.raises(latentforge.errors.DataError, match="began on 40 images of digits, there are now 4[1-9]"):
        latentforge.train("deae", out=part, steps=6, resume=True, progress=False, overrides=["data.limit=48"])
    assert (part / "metrics.jsonl").read_text() == before  # nothing of the run was touched


def test_subcluster_variant_trains_and_reloads(tmp_path):
    out = tmp_path / "r"
    latentforge.train("deae", data="digits", steps=3, out=out, preset="tiny", progress=False,
                      overrides=TINY + ["model.mask_clusters=4", "model.mask_subclusters=4", "data.limit=40"])
    trained = latentforge.api.load_run(out).task
    sub = trained.patterns.subclusters
    assert sub is not None and sub.shape == (40,) and set(sub.tolist()) <= {0, 1, 2, 3} and len(set(sub.tolist())) > 1
    second = trained.patterns.for_examples(np.arange(40))[1]  # 32 second-level channels, 8 per sub-cluster
    assert np.array_equal(second.argmax(1).numpy() // 8, sub)
    assert torch.equal(trained.sample(4, seed=3), load_run(out).task.sample(4, seed=3))
    with pytest.raises(latentforge.errors.ConfigError, match="mask_clusters"):
        latentforge.train("deae", data="digits", steps=1, out=tmp_path / "bad", preset="tiny", progress=False,
                          overrides=TINY + ["model.mask_subclusters=4"])


def test_per_module_learning_rates_and_warmup_reach_the_optimizer(tmp_path):
    """The encoder gets a param group of its own at lr * encoder_lr_scale; warm-up scales every group; a run
    without the knobs keeps the two groups older checkpoints were saved with."""
    from latentforge.config import build_config
    from latentforge.tasks import build_task
    from latentforge.train.task import Batch, DataShape

    cfg = build_config(preset="tiny", model_type="deae", overrides=TINY + [
        "model.encoder_lr_scale=0.25", "model.optim.warmup_steps=4", "model.optim.lr=1e-3",
        "model.encoder_input=constant"])
    data = load_dataset(cfg.data)
    task = build_task(cfg, torch.device("cpu"), DataShape.of(data), data)
    enc = {id(p) for p in [*task.net.encoder.parameters(), *task.net.to_latent.parameters(), task.net.constant]}
    groups = task.optimizers()["opt"].param_groups
    assert len(groups) == 3 and {id(p) for p in groups[2]["params"]} == enc
    idx = torch.arange(8)
    task.train_step(Batch(data.get(idx), idx, epoch=0, step=0))
    assert [g["lr"] for g in groups] == pytest.approx([1e-3 * 0.1 / 4, 1e-3 / 4, 1e-3 * 0.25 / 4])
    task.train_step(Batch(data.get(idx), idx, epoch=0, step=5))
    assert [g["lr"] for g in groups] == pytest.approx([1e-4, 1e-3, 2.5e-4])
    plain = build_task(build_config(preset="tiny", model_type="deae", overrides=TINY), torch.device("cpu"), DataShape.of(data))
    assert len(plain.optimizers()["opt"].param_groups) == 2


def test_cpu_preset_runs_on_fewer_images_than_pattern_clusters(tmp_path):
    """The cpu preset's coarse-to-fine code (32 clusters x 16 sub-clusters) must not trip over a small folder:
    with 20 images every image is its own cluster, and fresh patterns only draw clusters that exist."""
    out = tmp_path / "r"
    latentforge.train("deae", data="digits", steps=2, out=out, preset="cpu", progress=False,
                      overrides=["data.limit=20", "train.batch_size=8", "train.sample_every=1000", "train.grid_size=4"])
    task = load_run(out).task
    assert task.cfg.model.mask_clusters == 32 and task.cfg.model.encoder_input == "constant"
    assert np.array_equal(np.sort(task.patterns.clusters), np.arange(20))
    assert set(task.patterns.subclusters.tolist()) == {0}
    drawn = task.patterns.fresh(np.arange(500))[0].argmax(1).numpy()  # 32 channels, one per cluster
    assert set(drawn.tolist()) <= set(range(20)) and len(set(drawn.tolist())) > 10
    assert task.sample(4).shape == (4, 1, 32, 32)


def test_channels_last_trains_the_same_model_and_resumes_exactly(tmp_path):
    import numpy as np

    from conftest import TINY

    sets = TINY + ["train.checkpoint_every=2"]
    for fmt in ("contiguous", "channels_last"):
        latentforge.train("deae", data="digits", steps=4, out=tmp_path / fmt, preset="tiny", progress=False,
                          overrides=sets + [f"train.memory_format={fmt}"])
    nhwc, nchw = train_losses(tmp_path / "channels_last"), train_losses(tmp_path / "contiguous")
    # the same model and data: the first loss agrees to float order; NHWC kernels sum in another order, which
    # training then amplifies (measured 2e-4 relative at step 4 with 2 threads, 1e-2 with 1 thread)
    np.testing.assert_allclose(nhwc[0], nchw[0], rtol=1e-5)
    np.testing.assert_allclose(nhwc, nchw, rtol=5e-2)
    part = tmp_path / "part"  # but a channels_last run repeats itself exactly, so resume stays exact
    latentforge.train("deae", data="digits", steps=4, out=part, preset="tiny", progress=False,
                      overrides=sets + ["train.memory_format=channels_last"], until_step=2)
    latentforge.train("deae", out=part, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(part), nhwc, rtol=1e-6)
    assert latentforge.load_run(tmp_path / "channels_last").task.sample(2, seed=0).shape == (2, 1, 16, 16)


GAN = ["data.resolution=16", "train.batch_size=16", "train.log_every=1", "train.sample_every=1000",
       "train.grid_size=4"]


@pytest.mark.parametrize("model,base", [("deae", TINY),  # the GAN's four compiled graphs take minutes on 2 cores
                                        pytest.param("dcgan", GAN, marks=pytest.mark.slow)])
def test_compiled_modules_train_the_same_model_and_resume_exactly(tmp_path, model, base):
    """train.compile wraps the trained modules in place: the same losses as eager (graph capture with the 'eager'
    backend, which needs no C++ compiler; inductor's kernels are timed in benchmarks/cpu_efficiency.py), the same
    checkpoint keys, and an exact resume from a compiled run's checkpoint."""
    sets = base + ["train.checkpoint_every=2"]
    compiled = sets + ["train.compile=true", "train.compile_backend=eager"]
    latentforge.train(model, data="digits", steps=4, out=tmp_path / "eager", preset="tiny", progress=False,
                      overrides=sets)
    latentforge.train(model, data="digits", steps=4, out=tmp_path / "compiled", preset="tiny", progress=False,
                      overrides=compiled)
    eager, comp = train_losses(tmp_path / "eager"), train_losses(tmp_path / "compiled")
    assert len(comp) == len(eager) > 0
    np.testing.assert_allclose(comp, eager, rtol=1e-4)
    info = json.loads((tmp_path / "compiled" / "run.json").read_text())
    assert info["compiled"] is True and info["data_placement"] == "host"
    part = tmp_path / "part"
    latentforge.train(model, data="digits", steps=4, out=part, preset="tiny", progress=False, overrides=compiled,
                      until_step=2)
    latentforge.train(model, out=part, resume=True, progress=False)
    np.testing.assert_allclose(train_losses(part), comp, rtol=1e-6)
    loaded = latentforge.load_run(tmp_path / "compiled")  # an eager load of a compiled run's weights
    assert loaded.task.sample(2, seed=0).shape == (2, 1, 16, 16)


def test_training_data_is_staged_on_the_gpu_only_when_it_fits():
    """train.data_on_device: the decision (a quarter of the free memory), and what a staged copy returns."""
    from latentforge.data.staging import fits_on_device, stage

    assert fits_on_device(100, 400) and not fits_on_device(101, 400)
    ds = load_dataset(latentforge.config.DataConfig(name="digits", resolution=16, limit=32))
    cpu = torch.device("cpu")
    assert stage(ds, cpu, "yes") == (ds, "host")  # nothing to move on a CPU
    cuda = torch.device("cuda")
    assert stage(ds, cuda, "no")[1] == "host (pinned batches)"
    kept, where = stage(ds, cuda, "auto", free_bytes=ds.nbytes * 2)  # over a quarter: stays on the host
    assert kept is ds and "over a quarter" in where
    moved = ds.to_device(cpu)  # the staged copy (here on the CPU) draws the same batches
    idx = torch.tensor([3, 1, 7])
    assert torch.equal(moved.get(idx, device=cpu), ds.get(idx)) and moved.labels is ds.labels
    assert ds.get(idx).dtype == torch.float32 and ds.get(idx).shape == (3, 1, 16, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_the_data_placement_does_not_change_training(tmp_path):
    """The whole set on the GPU (auto) and uint8 batches through pinned memory (no) give the same batches, so the
    same losses; a compiled CUDA run trains too."""
    sets = TINY + ["train.device=cuda", "train.precision=fp32"]
    for placement in ("auto", "no"):
        latentforge.train("deae", data="digits", steps=4, out=tmp_path / placement, preset="tiny", progress=False,
                          overrides=sets + [f"train.data_on_device={placement}"])
    info = {p: json.loads((tmp_path / p / "run.json").read_text())["data_placement"] for p in ("auto", "no")}
    assert info == {"auto": "device", "no": "host (pinned batches)"}
    np.testing.assert_allclose(train_losses(tmp_path / "auto"), train_losses(tmp_path / "no"), rtol=1e-5)
    latentforge.train("deae", data="digits", steps=4, out=tmp_path / "compiled", preset="tiny", progress=False,
                      overrides=sets + ["train.compile=true"])
    np.testing.assert_allclose(train_losses(tmp_path / "compiled"), train_losses(tmp_path / "auto"), rtol=1e-3)
