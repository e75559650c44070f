"""The complexity study as one command: latents x generator widths x seeds, every cell an ordinary DCGAN run
folder trained with the same recipe and budget and scored by the same evaluator, then C_eps and the area under
each quality-vs-parameters curve (`complexity.ceps`).

    DIR/sweep.yaml                 the sweep's settings (a rerun must match them, so cells stay comparable)
    DIR/deae/                      the DeAE run whose encoder is the `deae` latent (unless --deae-run is given)
    DIR/dae/                       the Decoupled Autoencoder whose latents are the `dae` latent (unless --dae-run)
    DIR/cells/<latent>-w<width>-s<seed>/   one run folder per cell
    DIR/sweep.json                 every cell (latent, width, parameters, wall time, metrics, feature networks),
                                   the C_eps / AUC table per threshold
    DIR/quality_vs_params.png      quality against generator parameters, one curve per latent, seed spread

Resumable: a finished cell (its eval record is in its metrics.jsonl) is kept, an unfinished one resumes from its
checkpoint, a failed one is recorded with its error and retried on the next call while the sweep goes on.
"""
from __future__ import annotations

import json
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from latentforge.api import evaluate_run, train
from latentforge.config import build_config
from latentforge.complexity.ceps import CurvePoint, aggregate, rank_latents
from latentforge.errors import ConfigError, LatentforgeError
from latentforge.train.run_dir import RunDir

SCHEMA_VERSION = 1
LATENTS = ("gaussian", "uniform", "ssl", "deae", "dae")
SOURCE_LATENTS = ("deae", "dae")  # latents learned by another model of the toolkit: the sweep trains it first
METRICS = ("fid", "kid")  # lower is better: what C_eps can be read from


@dataclass
class SweepSpec:
    data: str
    latents: list[str]
    widths: list[float]
    seeds: list[int]
    steps: int
    preset: str = "cpu"
    overrides: list[str] = field(default_factory=list)
    eval_n: int = 1000
    metric: str = "fid"
    eps: list[float] = field(default_factory=list)  # empty: thresholds at quartiles of the measured curves
    deae_run: str | None = None
    deae_steps: int = 3000
    deae_preset: str | None = None  # None: the DeAE CPU preset for the cells' resolution (cpu16 or cpu)
    dae_run: str | None = None
    dae_steps: int = 2000
    dae_preset: str | None = None  # None: the DAE CPU preset for the cells' resolution (cpu16 or cpu)
    features: str = "auto"  # the evaluation network of every cell (latentforge eval --features)
    feature_net_steps: int | None = None  # None: the feature network's own default

    def check(self) -> None:
        bad = [name for name in self.latents if name not in LATENTS]
        if bad:
            raise ConfigError(f"unknown latent(s) {', '.join(bad)}; choose from {', '.join(LATENTS)}")
        if not self.latents or not self.widths or not self.seeds:
            raise ConfigError("a sweep needs at least one latent, one width and one seed")
        if any(w <= 0 for w in self.widths):
            raise ConfigError("widths must be positive")
        from latentforge.metrics.evaluate import FEATURE_CHOICES

        if self.features not in FEATURE_CHOICES:
            raise ConfigError(f"unknown feature network {self.features!r}: use {', '.join(FEATURE_CHOICES)}")
        if self.metric not in METRICS:
            raise ConfigError(f"--metric must be one of {', '.join(METRICS)}")
        if self.steps < 1 or self.eval_n < 2:
            raise ConfigError("--steps must be >= 1 and --eval-n >= 2")
        from latentforge.config import build_config

        build_config(self.preset, None, self.overrides, model_type="dcgan")  # a typo fails now, not in every cell


def cell_name(latent: str, width: float, seed: int) -> str:
    return f"{latent}-w{width:g}-s{seed}"


def _parse_cell(name: str) -> tuple[str, float, int] | None:
    import re

    m = re.fullmatch(r"([a-z]+)-w([0-9.eE+-]+)-s(\d+)", name)
    return (m.group(1), float(m.group(2)), int(m.group(3))) if m else None


class Sweep:
    """`jobs` > 1 trains that many cells at once, each in its own process with an equal share of the machine's
    threads (cells are independent runs; their wall times then share the machine, which sweep.json says)."""

    def __init__(self, root: Path, spec: SweepSpec, progress: bool = True,
                 log: Callable[[str], None] = print, jobs: int = 1):
        spec.check()
        if jobs < 1:
            raise ConfigError("--jobs must be at least 1")
        self.root, self.spec, self.progress, self.log, self.jobs = Path(root), spec, progress, log, jobs

    @classmethod
    def from_folder(cls, root: Path, **kwargs: Any) -> "Sweep":
        path = Path(root) / "sweep.yaml"
        if not path.is_file():
            raise ConfigError(f"{root} holds no sweep (no sweep.yaml)")
        try:
            return cls(root, SweepSpec(**yaml.safe_load(path.read_text())), **kwargs)
        except (TypeError, yaml.YAMLError) as e:
            raise ConfigError(f"{path} is not a sweep settings file of this version: {e}") from None

    # --- settings file: a rerun must describe the same study ---------------------------------------------------
    def _claim_folder(self) -> SweepSpec:
        """Check a rerun against the saved settings; return the whole grid (saved cells and requested ones)."""
        path = self.root / "sweep.yaml"
        mine = asdict(self.spec)
        if path.is_file():
            saved = yaml.safe_load(path.read_text()) or {}
            saved.setdefault("features", "trained")  # sweeps written before `features` existed were scored so
            fixed = ("data", "steps", "preset", "overrides", "eval_n", "features", "feature_net_steps")
            for kind in SOURCE_LATENTS:  # the model behind existing deae/dae cells may not change either
                if kind in saved.get("latents", []):
                    fixed += (f"{kind}_run", f"{kind}_steps", f"{kind}_preset")
            diff = [k for k in fixed if saved.get(k) != mine.get(k)]
            if diff:
                raise ConfigError(f"{self.root} holds a sweep with other settings ({', '.join(diff)}): cells would "
                                  f"not be comparable; choose another --out")
            for k in ("latents", "widths", "seeds"):  # growing the grid is fine: old cells are kept
                mine[k] = sorted(set(saved.get(k, [])) | set(mine[k]), key=lambda v: (str(type(v)), v))
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(mine, sort_keys=False))
        tmp.replace(path)
        return SweepSpec(**mine)

    # --- running cells -----------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train and score the requested cells, then read out the whole grid of this folder."""
        whole = self._claim_folder()
        sources: dict[str, str] = {}
        errors: dict[str, str] = {}
        for kind in SOURCE_LATENTS:
            if kind not in self.spec.latents:
                continue
            try:
                sources[kind] = self._source_run(kind)
            except KeyboardInterrupt:
                raise
            except Exception as e:  # noqa: BLE001  (that latent's cells fail with this error; the others go on)
                errors[kind] = str(e) if isinstance(e, LatentforgeError) else f"{type(e).__name__}: {e}"
        cells = self._cells()
        todo = []
        for lat, w, seed in cells:
            if lat in errors:
                self._fail(self._cell_dir(lat, w, seed), f"the {lat} run for the {lat} latent failed: {errors[lat]}")
            else:
                todo.append((lat, w, seed, sources.get(lat)))
        if self.jobs > 1 and len(todo) > 1:
            self._cells_in_parallel(todo)
        else:
            for i, (lat, w, seed, source) in enumerate(todo, 1):
                self.log(f"[{i}/{len(todo)}] {cell_name(lat, w, seed)}")
                self._cell(lat, w, seed, source)
        self.spec = whole
        return self.collect()

    def _cells_in_parallel(self, todo: list[tuple[str, float, int, str | None]]) -> None:
        import concurrent.futures as cf
        import multiprocessing
        import os

        threads = max(1, (os.cpu_count() or 1) // self.jobs)
        self.log(f"{len(todo)} cells, {self.jobs} at once with {threads} thread(s) each")
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter per worker: no forked torch thread pools
        with cf.ProcessPoolExecutor(self.jobs, mp_context=ctx) as pool:
            futs = {pool.submit(_cell_worker, str(self.root), asdict(self.spec), lat, w, seed, source, threads):
                    cell_name(lat, w, seed) for lat, w, seed, source in todo}
            try:
                for i, fut in enumerate(cf.as_completed(futs), 1):
                    fut.result()  # a cell's own failure is in its failed.json; this raises only if the worker died
                    self.log(f"[{i}/{len(todo)}] {futs[fut]} done")
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    def _fail(self, out: Path, error: str, trace: str = "") -> None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "failed.json").write_text(json.dumps({"error": error, "traceback": trace}, indent=2))
        self.log(f"  failed: {error}")

    def _cells(self) -> list[tuple[str, float, int]]:
        s = self.spec
        return [(lat, w, seed) for lat in s.latents for w in s.widths for seed in s.seeds]

    def _cells_to_collect(self) -> list[tuple[str, float, int]]:
        """The grid of sweep.yaml plus every cell folder on disk: jobs on several machines that wrote sweep.yaml at
        the same moment may have lost each other's grid entries, never their cells."""
        cells = self._cells()
        found = [m for p in sorted((self.root / "cells").glob("*-w*-s*")) if (m := _parse_cell(p.name))]
        extra = [c for c in found if c not in cells and c[0] in LATENTS]
        return cells + sorted(extra, key=lambda c: (c[0], c[1], c[2]))

    def _cell_dir(self, latent: str, width: float, seed: int) -> Path:
        return self.root / "cells" / cell_name(latent, width, seed)

    def _source_run(self, kind: str) -> str:
        """The run whose encoder gives the `kind` latent (deae: a DeAE, dae: a Decoupled Autoencoder): the one
        given with --deae-run/--dae-run, else one trained (or continued) in DIR/<kind>."""
        given, steps = getattr(self.spec, f"{kind}_run"), getattr(self.spec, f"{kind}_steps")
        if given:
            return given
        out = self.root / kind
        res_set = [o for o in self.spec.overrides if o.startswith("data.")]
        preset = getattr(self.spec, f"{kind}_preset") or _source_preset_for(self.spec, kind)
        run = RunDir(out)
        if run.exists() and run.load_config().model_type != kind:
            raise ConfigError(f"{out} holds a {run.load_config().model_type} run, not the sweep's {kind}")
        done = run.exists() and any(r.get("kind") == "summary" and r.get("step") == steps
                                    for r in run.read_metrics())
        if not done:
            self.log(f"training the {kind} run whose encoder gives the {kind} latent: {out}")
            resume = run.exists() and run.latest_checkpoint() is not None
            if run.exists() and not resume:  # killed before its first checkpoint: start over
                shutil.rmtree(out)
            res = train(kind, data=self.spec.data, steps=steps, out=out, preset=preset,
                        overrides=[] if resume else res_set, resume=resume, progress=self.progress)
            if res.interrupted:
                raise KeyboardInterrupt
        return str(out)

    def _ssl_archs(self) -> tuple[str, ...]:
        """The SimCLR architecture of the ssl cells' latent: every cell is scored by one network that is not it,
        so all cells share a feature network (a gaussian cell would otherwise be free to use that arch)."""
        if "ssl" not in self.spec.latents:
            return ()
        cfg = build_config(self.spec.preset, None, self.spec.overrides, model_type="dcgan")
        return (cfg.model.latent.ssl_arch,)

    def _cell(self, latent: str, width: float, seed: int, source_run: str | None) -> None:
        """Train and score one cell unless it is finished; a failure is written to the cell's failed.json."""
        s = self.spec
        out = self._cell_dir(latent, width, seed)
        run = RunDir(out)
        failed = out / "failed.json"
        if _final_eval(run, s.steps) is not None:
            return
        try:
            sets = [*s.overrides, f"model.width={width}", f"model.latent.kind={latent}", f"train.seed={seed}"]
            if latent in SOURCE_LATENTS:
                sets.append(f"model.latent.source.run={Path(source_run).resolve()}")
            latest = run.latest_checkpoint() if run.exists() else None
            if run.exists() and latest is None:  # started but never checkpointed: start over
                shutil.rmtree(out)
            if latest is None or latest[0] < s.steps:
                res = train("dcgan", data=s.data, steps=s.steps, out=out, preset=s.preset,
                            overrides=[] if latest else sets, resume=latest is not None, progress=self.progress)
                if res.interrupted:
                    raise KeyboardInterrupt
                if res.step < s.steps:  # stopped by train.time_limit_s: the next call continues it
                    return
            evaluate_run(out, n=s.eval_n, features=s.features, progress=self.progress,
                         feature_net_steps=s.feature_net_steps,
                         avoid=self._ssl_archs())
            failed.unlink(missing_ok=True)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001  (a broken cell must not end the study; its error is kept)
            error = str(e) if isinstance(e, LatentforgeError) else f"{type(e).__name__}: {e}"
            self._fail(out, error, traceback.format_exc(limit=8))

    # --- the read-out ------------------------------------------------------------------------------------------
    def collect(self) -> dict[str, Any]:
        """Gather every cell's figures from its run folder into sweep.json and the plot (also `sweep --collect`,
        e.g. after cells ran as separate jobs on other machines)."""
        records = []
        for lat, w, seed in self._cells_to_collect():
            out = self._cell_dir(lat, w, seed)
            rec: dict[str, Any] = {"cell": cell_name(lat, w, seed), "latent": lat, "width": w, "seed": seed,
                                   "run_dir": str(out.relative_to(self.root))}
            if (out / "failed.json").is_file():
                rec.update(status="failed", error=json.loads((out / "failed.json").read_text())["error"])
            elif _final_eval(RunDir(out), self.spec.steps) is None:
                rec["status"] = "pending"
            else:
                rec.update(_cell_figures(RunDir(out), self.spec.steps), status="done")
            records.append(rec)
        s = self.spec
        done = [r for r in records if r["status"] == "done"]
        networks = sorted({r["feature_network"] for r in done})
        if len(networks) > 1:
            raise ConfigError(f"cells were scored by different feature networks ({', '.join(networks)}): "
                              f"their metrics cannot share one table")
        usable = [r for r in done if (r.get("generator_parameters") or 0) > 0
                  and np.isfinite(r["metrics"].get(s.metric, np.nan))]
        for r in done:
            if r not in usable:
                r["excluded"] = f"no finite {s.metric} or parameter count: left out of the curves"
        curves = {lat: [CurvePoint(r["generator_parameters"], r["metrics"][s.metric], r["seed"])
                        for r in usable if r["latent"] == lat] for lat in s.latents}
        curves = {k: v for k, v in curves.items() if v}
        eps_list = list(s.eps) or _default_eps(curves)
        summary = {
            "schema_version": SCHEMA_VERSION, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "settings": asdict(s), "metric": s.metric, "feature_network": networks[0] if networks else None,
            "cells": records,
            "curves": {lat: aggregate(pts) for lat, pts in curves.items()},
            "c_eps": [{"eps": eps, "eps_source": "given" if s.eps else "quartile of the measured seed-mean curves",
                       "table": rank_latents(curves, eps)} for eps in eps_list] if curves else [],
            "n_done": len(done), "n_failed": sum(r["status"] == "failed" for r in records),
            "n_pending": sum(r["status"] == "pending" for r in records),
            "parallel_jobs": self.jobs,  # >1: cells shared the machine, so their wall times are not solo times
        }
        summary = _jsonable(summary)
        if curves:
            from latentforge.complexity.plot import plot_quality_vs_params

            summary["plot"] = plot_quality_vs_params(summary, self.root / "quality_vs_params.png").name
        tmp = self.root / "sweep.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(self.root / "sweep.json")
        return summary


def _cell_worker(root: str, spec: dict[str, Any], latent: str, width: float, seed: int, source: str | None,
                 threads: int) -> None:
    """One cell in a worker process (`sweep --jobs`)."""
    import torch

    torch.set_num_threads(threads)
    Sweep(Path(root), SweepSpec(**spec), progress=False, log=lambda _: None)._cell(latent, width, seed, source)


def _source_preset_for(spec: SweepSpec, kind: str) -> str:
    """The CPU preset of the deae/dae model whose depth fits the cells' resolution."""
    resolution = build_config(spec.preset, None, spec.overrides, model_type="dcgan").data.resolution
    presets = {16: "cpu16", 32: "cpu"}
    if resolution not in presets:
        raise ConfigError(f"no {kind} CPU preset for {resolution}px images: train a {kind} at this resolution "
                          f"(`latentforge train {kind} --set data.resolution={resolution} ...`) and pass "
                          f"--{kind}-run")
    return presets[resolution]


def _final_eval(run: RunDir, steps: int) -> dict[str, Any] | None:
    evals = [r for r in run.read_metrics() if r.get("kind") == "eval" and r.get("step") == steps]
    return evals[-1] if evals else None


def _cell_figures(run: RunDir, steps: int) -> dict[str, Any]:
    """What sweep.json keeps of a finished cell: sizes, cost, all eval metrics, the networks involved."""
    records = run.read_metrics()
    ev = _final_eval(run, steps)
    info = run.read_info()
    summaries = [r for r in records if r.get("kind") == "summary"]
    task = info.get("task", {})
    metric_keys = ("fid", "fid_train", "fid_heldout_vs_train", "kid", "kid_std", "is", "precision", "recall",
                   "density", "coverage", "nn_pixel_rms_median", "heldout_nn_pixel_rms_median",
                   "nn_feature_ratio_vs_heldout", "near_copy_fraction")
    return {
        "generator_parameters": task.get("generator_parameters"),
        "discriminator_parameters": task.get("discriminator_parameters"),
        "wall_s": round(sum(r.get("wall_s", 0.0) for r in summaries), 2),
        "eval_s": ev.get("eval_seconds"),
        "feature_network": ev["feature_network"],
        "latent": task.get("latent", {}).get("kind"),
        "latent_info": {k: v for k, v in task.get("latent", {}).items() if k != "network_info"},
        "metrics": {k: ev[k] for k in metric_keys if k in ev},
        "final_losses": {k: summaries[-1][k] for k in ("loss", "g_loss", "d_acc") if summaries and k in summaries[-1]},
    }


def _default_eps(curves: dict[str, list[CurvePoint]]) -> list[float]:
    means = [row["mean"] for pts in curves.values() for row in aggregate(pts)]
    return [float(np.round(q, 4)) for q in np.quantile(means, [0.25, 0.5, 0.75])] if means else []


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj
