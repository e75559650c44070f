"""The one training loop. It owns data order, devices, precision, progress, logging, sample grids, checkpoints and
resume; a TrainTask supplies the model-specific step.

Determinism: epoch e visits the data in a permutation drawn from (seed, e); the task draws its per-step randomness
from (seed, step). A checkpoint therefore only needs weights, EMA and optimizer state, and a resumed run repeats the
uninterrupted run's losses exactly (on the same device and thread count).
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import os
import platform
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from latentforge._version import __version__
from latentforge.config import RunConfig
from latentforge.data.protocol import TrainingData
from latentforge.data.staging import stage
from latentforge.errors import CheckpointError, ConfigError, LatentforgeError, TrainingDiverged
from latentforge.train import compiling, distributed
from latentforge.train.precision import resolve_precision
from latentforge.train.run_dir import ResumePoint, RunDir
from latentforge.train.task import Batch, TrainTask
from latentforge.utils.checkpoint import save_checkpoint
from latentforge.utils.images import save_grid
from latentforge.utils.memory import peak_memory_mib
from latentforge.utils.threads import SlowdownWatch, wait_policy_note


def resolve_device(name: str, option: str = "train.device") -> torch.device:
    """`option` names where the value came from, so the message tells the user what to change."""
    if name == "auto":
        if torch.cuda.is_available():  # under torchrun: this process's GPU
            return torch.device("cuda", distributed.world().local_rank) if distributed.world().enabled \
                else torch.device("cuda")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{option} {name!r} is not a device: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        fix = "--device cpu" if option.startswith("--") else f"{option}=cpu"
        raise ConfigError(f"{option} is {name} but no CUDA device is available here; use {fix} (or auto)")
    return dev


def memory_format(name: str, device: torch.device) -> torch.memory_format:
    if name == "channels_last" or (name == "auto" and device.type == "cuda"):
        return torch.channels_last
    return torch.contiguous_format


class EpochLoader:
    """Batches by step number: step s lies in epoch s // steps_per_epoch, at a fixed place in that epoch's order."""

    def __init__(self, dataset: TrainingData, batch_size: int, seed: int, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.dataset, self.seed, self.device, self.memory_format = dataset, seed, device, memory_format
        self.batch_size = min(batch_size, len(dataset))
        self.steps_per_epoch = len(dataset) // self.batch_size
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def batch(self, step: int) -> Batch:
        epoch, offset = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 65_537 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(len(self.dataset), generator=g)
        index = self._perm[offset * self.batch_size:(offset + 1) * self.batch_size]
        rows = None
        if distributed.world().enabled:  # this process's share of the global batch
            index, rows = distributed.shard(index)
        images = self.dataset.get(index, device=self.device)
        if images.dim() == 4 and self.memory_format is not torch.contiguous_format:
            images = images.contiguous(memory_format=self.memory_format)
        return Batch(images=images, index=index, epoch=epoch, step=step, rows=rows,
                     global_size=self.batch_size if rows is not None else None)


@dataclass
class FitResult:
    step: int
    seconds: float
    last: dict[str, float]
    interrupted: bool = False
    state: str = "finished"  # finished | interrupted | time_limit (train.time_limit_s) | paused (until_step)


class Trainer:
    def __init__(self, task: TrainTask, dataset: TrainingData, run: RunDir, progress: bool = True,
                 bar: bool = True):
        """progress: print the start line, estimates, diagnostics and progress (rank 0 only); bar: as a tqdm bar on a
        terminal. Without the bar, or off a terminal, progress is a plain line every 30 s, which suits log files."""
        self.task, self.dataset, self.run = task, dataset, run
        self.cfg = task.cfg.train
        self.memory_format = memory_format(self.cfg.memory_format, task.device)
        if self.memory_format is torch.channels_last:  # weights (and their EMA copies) in NHWC
            for m in [*task.modules().values(), *(e.model for e in task.emas.values())]:
                m.to(memory_format=torch.channels_last)
        staged, self.data_placement = stage(dataset, task.device, self.cfg.data_on_device)
        self.loader = EpochLoader(staged, self.cfg.batch_size, self.cfg.seed, task.device, self.memory_format)
        self.world = distributed.world()
        self.main = self.world.is_main  # only rank 0 writes to the run folder
        self.progress = progress and self.main
        self.bar = bar
        if self.world.enabled:
            distributed.check_batch(self.loader.batch_size)
            if self.cfg.sync_bn:
                distributed.convert_sync_batchnorm(task.modules(), task.device)
            distributed.broadcast_modules(task.modules())
        self.precision = resolve_precision(self.cfg.precision, task.device)
        # compile last: after SyncBatchNorm replaced modules, and after the tasks made their EMA copies. `auto`
        # decides after the session's first eager steps (fit), unless no compiler rules it out now.
        self.compiling = compiling.decide(self.cfg.compile, self.cfg.compile_backend, None)
        self._decide_compile = self.cfg.compile == "auto" and (self.cfg.compile_backend != "inductor"
                                                               or compiling.cxx_compiler_works() is not None)
        self._compile_pending = False  # the first compiled step runs guarded: a failed compilation falls back
        self._step_seconds: list[float] = []  # auto: eager steps, then compiled ones, to check that compiling paid
        self._check_compiled_at: int | None = None
        if self.compiling.compile:
            self._start_compiling()

    # --- checkpoints ---------------------------------------------------------------------------------------
    def save(self, step: int) -> None:
        info = {"step": step, "model_type": self.task.cfg.model_type, "config": self.task.cfg.model_dump(mode="json"),
                "dataset": self.dataset.describe(), "time": time.time()}
        if self.main:
            save_checkpoint(self.run.checkpoint_path(step), {"step": step, **self.task.state_dict()},
                            info | {"world_size": self.world.size})
            self.run.prune_checkpoints(self.cfg.keep_checkpoints)
        distributed.barrier()  # no rank goes on (or reads it on resume) before the checkpoint is in place

    def restore(self, resume_from: ResumePoint) -> int:
        """Continue from the checkpoint the caller loaded and checked against the config before the task was built
        (api.resumed_checkpoint): one read of the file per resume. A run killed before its first checkpoint starts
        over, forgetting that session's log."""
        if self.main:
            self.run.remove_stale_temporaries()
        distributed.barrier()
        if resume_from.checkpoint is None:
            if self.main and self.run.metrics_path.is_file():
                self.run.truncate_metrics(0)
            return 0
        step, path, state, info = resume_from.checkpoint
        try:
            self.task.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as e:
            raise CheckpointError(f"checkpoint {path} does not fit this model: {str(e).splitlines()[0]}"
                                  + self.run.version_note()) from None
        if self.main:
            self.run.truncate_metrics(step)
            saved_world = info.get("world_size", 1)
            if saved_world != self.world.size and self.progress:
                print(f"note: this run was trained with {saved_world} process(es), it continues with "
                      f"{self.world.size}: same data order and global batch", flush=True)
        return int(state["step"])

    # --- the loop --------------------------------------------------------------------------------------------
    def fit(self, resume_from: ResumePoint | None = None, until_step: int | None = None,
            on_step: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
        """Train to cfg.steps (or stop early at `until_step`, as a job limit would). Ctrl-C saves and returns.
        resume_from: continue a run from there (see `restore`); None: a new run."""
        cfg, task = self.cfg, self.task
        resume = resume_from is not None
        start = self.restore(resume_from) if resume else 0
        if resume and self.main:  # accepted: only now may the config change (a refused resume leaves it as it was)
            task.cfg.save(self.run.config_path)
            self.run.open_events(purge_step=start + 1)
        end = min(cfg.steps, until_step) if until_step is not None else cfg.steps
        if self._decide_compile and end - start <= compiling.DECIDE_AFTER_STEPS:  # too short to time: eager
            self._decide_compile = False
            self.compiling = compiling.decide("auto", cfg.compile_backend, 0.0)
        if (not resume or start == 0) and self.main:
            self.run.write_info(self._info())
        report = ProgressReport(self, start, end)
        report.start_line()
        acc: dict[str, float] = {}
        counts: dict[str, int] = {}
        n_acc, t_interval, t0 = 0, time.perf_counter(), time.perf_counter()
        last: dict[str, float] = {}
        step, state = start, "finished"
        bar = tqdm(total=cfg.steps, initial=start, disable=None if self.progress and self.bar else True,
                   dynamic_ncols=True, desc=f"train {task.name}", unit="step")
        self._note_precision_change(resume)
        try:
            while step < end:
                if cfg.time_limit_s is not None and distributed.any_rank(
                        time.perf_counter() - t0 >= cfg.time_limit_s, task.device):
                    self.save(step)  # a wall-clock budget ends the session like a job limit: resumable
                    state = "time_limit"
                    break
                if self._decide_compile and step == start + compiling.DECIDE_AFTER_STEPS:
                    self._decide_compile = False
                    self._auto_compile(step, time.perf_counter() - t0, step - start, end - step)
                batch = self.loader.batch(step)
                t_step = time.perf_counter()
                logs = self._train_step(batch)
                if self._decide_compile or self._check_compiled_at is not None:
                    self._step_seconds.append(time.perf_counter() - t_step)
                if step + 1 == self._check_compiled_at:
                    self._keep_compiled_if_faster()
                logs = distributed.average_logs(logs, task.device)
                self._check_finite(step, logs)
                step += 1
                for k, v in logs.items():  # averaged per key: a key may be logged on some steps only
                    acc[k] = acc.get(k, 0.0) + v
                    counts[k] = counts.get(k, 0) + 1
                n_acc += 1
                if step % cfg.log_every == 0 or step == end:
                    now = time.perf_counter()
                    img_s = n_acc * self.loader.batch_size / max(now - t_interval, 1e-9)
                    last = {k: v / counts[k] for k, v in acc.items()}
                    if self.main:
                        self.run.append_metrics({"kind": "train", "step": step, "epoch": batch.epoch, **last,
                                                 "img_per_s": round(img_s, 2), "time_s": round(now - t0, 3)})
                    bar.set_postfix(loss=f"{last.get('loss', float('nan')):.4f}", img_s=f"{img_s:.0f}")
                    report.logged(step, last, img_s, bar.disable)
                    acc, counts, n_acc, t_interval = {}, {}, 0, now
                bar.update(1)
                report.stepped(step)
                if on_step is not None:
                    on_step(step, logs)
                if (step % cfg.sample_every == 0 or step == cfg.steps) and self.main:
                    self.save_samples(step)
                if step % cfg.checkpoint_every == 0 or step == end:
                    self.save(step)
            if state == "finished" and step < cfg.steps:
                state = "paused"
        except TrainingDiverged:
            bar.close()
            raise
        except KeyboardInterrupt:
            bar.close()
            if step > start:
                self.save(step)
            return self._finish(FitResult(step, time.perf_counter() - t0, last, interrupted=True, state="interrupted"))
        bar.close()
        return self._finish(FitResult(step, time.perf_counter() - t0, last, state=state))

    def _train_step(self, batch: Batch) -> dict[str, float]:
        with self.precision.autocast(self.task.device):
            if not self._compile_pending:
                return self.task.train_step(batch)
            self._compile_pending = False
            before = copy.deepcopy(self.task.state_dict())  # a failed compile must not leave half a step behind
            try:
                return self.task.train_step(batch)
            except Exception as e:  # noqa: BLE001 -- dynamo and inductor raise many kinds; eager re-raises real bugs
                compiling.uncompile_modules(self.task.modules().values())
                self.task.load_state_dict(before)
                self.compiling = compiling.CompileDecision(False, f"compilation failed ({compiling.cause(e)})")
                if self.main:
                    self.run.update_info(compiled=False, compile_reason=self.compiling.reason)
                    tqdm.write(f"warning: torch.compile failed, training goes on eager: {self.compiling.reason}")
                return self.task.train_step(batch)

    def _start_compiling(self) -> None:
        compiling.compile_modules(self.task.modules().values(), self.cfg.compile_mode, self.cfg.compile_backend)
        self._compile_pending = True

    def _auto_compile(self, step: int, elapsed_s: float, steps_done: int, steps_left: int) -> None:
        """train.compile=auto, after the session's first eager steps: compile if the time left repays it."""
        remaining = elapsed_s / max(steps_done, 1) * steps_left
        if self.cfg.time_limit_s is not None:
            remaining = min(remaining, max(self.cfg.time_limit_s - elapsed_s, 0.0))
        decision = compiling.decide("auto", self.cfg.compile_backend, remaining)
        if self.world.enabled:  # every rank compiles or none does
            decision = compiling.CompileDecision(distributed.any_rank(decision.compile, self.task.device),
                                                 decision.reason)
        self.compiling = decision
        if decision.compile:
            self._start_compiling()
            # the next step compiles; the CHECK_STEPS after it show whether compiled steps are faster here
            self._eager_seconds = _median(self._step_seconds[1:] or self._step_seconds)
            self._step_seconds, self._check_compiled_at = [], step + 1 + compiling.CHECK_STEPS
        if self.main:
            self.run.update_info(compiled=decision.compile, compile_reason=decision.reason)
        if self.progress:
            tqdm.write(f"compiling with torch.compile, the next step takes a minute or two ({decision.reason})"
                       if decision.compile else f"staying eager ({decision.reason})")

    def _keep_compiled_if_faster(self) -> None:
        """train.compile=auto: on some networks (channels_last on a CPU, large convolutions) compiled steps are no
        faster; then the compile time is lost but the rest of the run goes back to eager steps."""
        self._check_compiled_at = None
        compiled = _median(self._step_seconds[1:])
        slower = compiled > (1 - compiling.MIN_GAIN) * self._eager_seconds
        if self.world.enabled:  # every rank keeps compiling or none does
            slower = distributed.any_rank(slower, self.task.device)
        if not slower:
            return
        compiling.uncompile_modules(self.task.modules().values())
        self.compiling = compiling.CompileDecision(
            False, f"auto: compiled steps were not faster ({compiled:.3g} s vs {self._eager_seconds:.3g} s eager), "
                   f"eager again")
        if self.main:
            self.run.update_info(compiled=False, compile_reason=self.compiling.reason)
        if self.progress:
            tqdm.write(f"back to eager steps: {self.compiling.reason}")

    def _note_precision_change(self, resume: bool) -> None:
        """A run resumed under another precision (another machine) goes on, but no longer repeats its losses."""
        if not (resume and self.main):
            return
        before = self.run.read_info().get("precision")
        if before is not None and before != self.precision.name:
            if self.progress:
                print(f"note: this run trained in {before} so far and continues in {self.precision.name} "
                      f"({self.precision.reason})", flush=True)
            self.run.update_info(**self.precision.record())

    def _check_finite(self, step: int, logs: dict[str, float]) -> None:
        """Stop at the first non-finite loss term, before the damaged weights reach a checkpoint or the log."""
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if not bad:
            return
        if self.main:
            self.run.close_events()
            self.run.update_info(state="diverged", diverged_at_step=step + 1)
        latest = self.run.latest_checkpoint()
        kept = f"the last good checkpoint is step {latest[0]}" if latest else "no checkpoint was written yet"
        terms = ", ".join(f"{k}={logs[k]}" for k in bad)
        raise TrainingDiverged(
            f"training diverged at step {step + 1}: non-finite {terms}. Stopped without saving; {kept}. Try a lower "
            f"learning rate (--set {'=... / '.join(self.task.lr_keys)}=...) or gradient clipping "
            f"(--set train.grad_clip=1.0), then continue with --resume")

    def _finish(self, fit: FitResult) -> FitResult:
        """run.json says how the run stands: state, step, the training time summed over sessions, and the peak memory
        of the largest session."""
        if not self.main:
            return fit
        self.run.close_events()
        info = self.run.read_info()
        peak, kind = peak_memory_mib(self.task.device)
        memory = {} if peak is None else {"peak_memory_mib": round(max(peak, info.get("peak_memory_mib") or 0.0), 1),
                                          "peak_memory_kind": kind}
        self.run.update_info(state=fit.state, step=fit.step, sessions=info.get("sessions", 0) + 1,
                             duration_s=round(info.get("duration_s", 0.0) + fit.seconds, 2), **memory,
                             updated=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        return fit

    def save_samples(self, step: int) -> None:
        """The grid, and beside it (step_*.json, and in metrics.jsonl as kind='diagnostic') where training stands."""
        images = self.task.sample(self.cfg.grid_size, seed=self.cfg.seed)
        path = self.run.samples / f"step_{step:07d}.png"
        save_grid(images, path)
        diag = {"step": step, **self.task.diagnose(self.dataset, images)}
        self.run.append_metrics({"kind": "diagnostic", **diag})
        path.with_suffix(".json").write_text(json.dumps(diag, indent=2))
        if self.progress:
            figures = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in diag.items() if k.endswith("_ratio"))
            tqdm.write(f"step {step}: {figures}" + (f"\n  {diag['note']}" if "note" in diag else ""))

    def _info(self) -> dict[str, Any]:
        return {
            "model_type": self.task.cfg.model_type,
            "dataset": self.dataset.describe(),
            "task": self.task.describe(),
            "device": str(self.task.device),
            "batch_size": self.loader.batch_size,
            "steps_per_epoch": self.loader.steps_per_epoch,
            "versions": {"latentforge": __version__, "torch": torch.__version__, "python": platform.python_version()},
            "threads": torch.get_num_threads(),
            "world_size": self.world.size,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
            "data_placement": self.data_placement,
            "compiled": self.compiling.compile,
            "compile_reason": (f"auto: decided after the first {compiling.DECIDE_AFTER_STEPS} steps"
                               if self._decide_compile else self.compiling.reason),
            **self.precision.record(),
        }


class ProgressReport:
    """What a person watching (or a log file) sees: one start line naming everything that decides the cost, a
    time estimate from the first steps, and, when stdout is not a terminal (no progress bar), a plain progress
    line at most every `every_s` seconds. Silent when the Trainer's `progress` is off (the Python API's default
    in tests and benchmarks)."""

    def __init__(self, trainer: "Trainer", start: int, end: int, every_s: float = 30.0, estimate_after: int = 5):
        self.trainer, self.start, self.end, self.every_s = trainer, start, end, every_s
        self.estimate_at = min(end, start + estimate_after)
        self.t0 = self.t_last = time.perf_counter()
        self.on = trainer.progress
        self.slowdown = SlowdownWatch() if trainer.task.device.type == "cpu" else None

    def start_line(self) -> None:
        if not self.on:
            return
        t, ds, cfg = self.trainer.task, self.trainer.dataset, self.trainer.task.cfg
        params = sum(p.numel() for m in t.modules().values() for p in m.parameters())
        what = f"resuming {cfg.model_type} at step {self.start:,}" if self.start else f"training {cfg.model_type}"
        print(f"{what} ({params / 1e6:.2f}M parameters, preset {cfg.preset}) on "
              f"{t.device} with {torch.get_num_threads()} threads{_wait_policy(t.device)}; data {ds.name} "
              f"({len(ds):,} {ds.split} {ds.kind}, "
              f"{ds.resolution}x{ds.resolution}x{ds.channels}); {cfg.train.steps:,} steps of batch "
              f"{self.trainer.loader.batch_size}"
              + f"; {self.trainer.precision.name} ({self.trainer.precision.reason}); {self._compile_note()}",
              flush=True)

    def _compile_note(self) -> str:
        tr = self.trainer
        if tr._decide_compile:
            return (f"compile auto: decided after {compiling.DECIDE_AFTER_STEPS} eager steps (compiles when "
                    f"{compiling.MIN_REMAINING_S / 60:.0f}+ min are left)")
        if tr.compiling.compile:
            return f"compiled with torch.compile ({tr.compiling.reason}; the first step compiles: minutes)"
        return f"eager ({tr.compiling.reason})"

    def stepped(self, step: int) -> None:
        if self.on and step == self.estimate_at and step < self.end:
            per_step = (time.perf_counter() - self.t0) / (step - self.start)
            left = per_step * (self.end - step)
            tqdm.write(f"first steps: {per_step:.2f} s/step, so about {_duration(left)} for the remaining "
                       f"{self.end - step:,} steps")

    def logged(self, step: int, last: dict[str, float], img_s: float, bar_hidden: bool) -> None:
        advice = self.slowdown.observe(img_s) if self.on and self.slowdown else None
        if advice:
            tqdm.write(f"note: {advice}")
        now = time.perf_counter()
        if not (self.on and bar_hidden) or (now - self.t_last < self.every_s and step != self.end):
            return
        self.t_last = now
        done = step - self.start
        eta = (now - self.t0) / max(done, 1) * (self.end - step)
        loss = f" loss {last['loss']:.4f}" if "loss" in last else ""
        print(f"step {step:,}/{self.end:,}{loss} {img_s:.0f} img/s, elapsed {_duration(now - self.t0)}, "
              f"left about {_duration(eta)}", flush=True)


def _wait_policy(device: torch.device) -> str:
    return f" (OpenMP wait policy {wait_policy_note()})" if device.type == "cpu" else ""


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def check_compatible(current: dict[str, Any], saved: dict[str, Any], path: Any, ignore: frozenset[str] = frozenset()
                     ) -> None:
    """Refuse weights trained under another architecture, pattern rule or image shape, naming the first difference.

    `ignore` lists model keys that only steer training or sampling (they may change between sessions)."""
    current, saved = _normalised(current), _normalised(saved)
    if current.get("train", {}).get("seed") != saved.get("train", {}).get("seed"):
        raise CheckpointError(f"checkpoint {path} was trained with train.seed={saved.get('train', {}).get('seed')!r}"
                              f" (it defines the data order and patterns), but the config says "
                              f"{current.get('train', {}).get('seed')!r}")
    for section in ("model_type", "model"):
        a, b = current.get(section), saved.get(section)
        if a != b:
            if isinstance(a, dict) and isinstance(b, dict):
                for k in sorted(set(a) | set(b)):
                    if k not in ignore and a.get(k) != b.get(k):
                        raise CheckpointError(
                            f"checkpoint {path} was trained with {section}.{k}={b.get(k)!r}, "
                            f"but the config says {a.get(k)!r}")
                continue
            raise CheckpointError(f"checkpoint {path} was trained with {section}={b!r}, but the config says {a!r}")
    for k in ("resolution", "channels"):
        a, b = current.get("data", {}).get(k), saved.get("data", {}).get(k)
        if a != b:
            raise CheckpointError(f"checkpoint {path} was trained with data.{k}={b!r}, but the config says {a!r}")


def _normalised(saved: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's config in today's layout (older versions kept DeAE's loss and optimizer elsewhere)."""
    try:
        return RunConfig.from_dict(saved).model_dump(mode="json")
    except LatentforgeError:
        return saved
