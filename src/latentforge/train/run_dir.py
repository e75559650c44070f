"""The run folder: everything a run produces, in one place, enough to reproduce and resume it.

    RUNDIR/config.yaml            typed config (RunConfig), round-trips
    RUNDIR/run.json               what was resolved at start: dataset, loss network, device, versions
    RUNDIR/metrics.jsonl          one JSON object per log interval (and evaluations later)
    RUNDIR/events.out.tfevents.*  the same numbers for TensorBoard (train/, diagnostic/, eval/ scalars)
    RUNDIR/checkpoints/step_XXXXXXX.safetensors (+ .json)
    RUNDIR/samples/step_XXXXXXX.png
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentforge import records
from latentforge.config import RunConfig
from latentforge.errors import CheckpointError
from latentforge.train.events import EventLog

_CKPT = re.compile(r"step_(\d+)\.safetensors$")
LoadedCheckpoint = tuple[int, Path, dict[str, Any], dict[str, Any]]  # (step, path, state, info) as loaded


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run goes on from, read once before its task is built (api.resumed_checkpoint) so that the
    task and the trainer restore from the same load. checkpoint None: the run was killed before its first save and
    starts over."""
    checkpoint: LoadedCheckpoint | None

    @property
    def state(self) -> dict[str, Any] | None:
        return self.checkpoint[2] if self.checkpoint else None


class RunDir:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.events: EventLog | None = None

    config_path = property(lambda self: self.root / "config.yaml")
    metrics_path = property(lambda self: self.root / "metrics.jsonl")
    info_path = property(lambda self: self.root / "run.json")
    checkpoints = property(lambda self: self.root / "checkpoints")
    samples = property(lambda self: self.root / "samples")

    def create(self, cfg: RunConfig | None) -> None:
        """Make the folder layout and write `cfg` (None: leave config.yaml as it is, e.g. before a resume)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        self.samples.mkdir(exist_ok=True)
        if cfg is not None:
            cfg.save(self.config_path)

    def exists(self) -> bool:
        return self.config_path.is_file()

    def load_config(self) -> RunConfig:
        if not self.exists():
            raise CheckpointError(f"{self.root} is not a run folder (no config.yaml)")
        return RunConfig.load(self.config_path)

    def checkpoint_path(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:07d}.safetensors"

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := _CKPT.search(p.name))]
        return sorted(found)

    def latest_checkpoint(self) -> tuple[int, Path] | None:
        found = self.list_checkpoints()
        return found[-1] if found else None

    def load_good_checkpoint(self, step: int | None = None) -> LoadedCheckpoint | None:
        """(step, path, state, info) of checkpoint `step`, or of the latest one that loads: a damaged latest file
        (a kill during a copy, a bad disk) falls back to the one before it, with a warning. None: no checkpoint."""
        from latentforge.utils.checkpoint import CorruptCheckpointError, load_checkpoint

        found = self.list_checkpoints()
        if step is not None:
            found = [(s, p) for s, p in found if s == step]
        for i, (s, path) in enumerate(reversed(found)):
            try:
                state, info = load_checkpoint(path)
            except CorruptCheckpointError as e:
                if step is not None or i == len(found) - 1:
                    raise
                warnings.warn(f"{e}; falling back to the checkpoint before it", stacklevel=2)
                continue
            return s, path, state, info
        return None

    def remove_stale_temporaries(self) -> list[Path]:
        """Half-written checkpoint files of a session that was killed mid-save (never renamed into place, never
        loaded): removed when the run resumes, the only writer of this folder."""
        stale = list(self.checkpoints.glob("*.tmp")) if self.checkpoints.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)
        return stale

    def prune_checkpoints(self, keep: int) -> None:
        for _, p in self.list_checkpoints()[:-keep] if keep > 0 else []:
            p.unlink(missing_ok=True)
            p.with_suffix(".json").unlink(missing_ok=True)

    def append_metrics(self, record: dict[str, Any]) -> None:
        """One record of a kind `latentforge.records` declares, with its required keys."""
        records.check(record)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        if self.events is None:
            self.events = EventLog(self.root)
        self.events.write(record)

    def open_events(self, purge_step: int | None = None) -> None:
        """Start this session's event file; on resume, events after `purge_step` are purged (see EventLog)."""
        self.close_events()
        self.events = EventLog(self.root, purge_step)

    def close_events(self) -> None:
        if self.events is not None:
            self.events.close()

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record; a torn last line (the process was killed mid-write) is skipped, as it was never logged."""
        if not self.metrics_path.is_file():
            return []
        lines = [line for line in self.metrics_path.read_text().splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if i != len(lines) - 1:
                    raise CheckpointError(f"{self.metrics_path} line {i + 1} is not JSON: the file was edited or "
                                          f"damaged") from None
        return records

    def truncate_metrics(self, step: int) -> None:
        """On resume, drop training records past the checkpoint so the log reads like one uninterrupted run."""
        records = [r for r in self.read_metrics() if r.get("kind") != "train" or r.get("step", 0) <= step]
        tmp = self.metrics_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
        os.replace(tmp, self.metrics_path)

    def write_info(self, info: dict[str, Any]) -> None:
        tmp = self.info_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, self.info_path)

    def update_info(self, **fields: Any) -> None:
        self.write_info(self.read_info() | fields)

    def read_info(self) -> dict[str, Any]:
        return json.loads(self.info_path.read_text()) if self.info_path.is_file() else {}

    def version_note(self) -> str:
        """When the run was written by another latentforge version: say so, since that explains most checkpoints
        that no longer fit."""
        from latentforge._version import __version__

        written = self.read_info().get("versions", {}).get("latentforge")
        if written == __version__:
            return ""
        by = f"latentforge {written}" if written else "a latentforge older than 0.1.0 (it did not record its version)"
        return (f" (this run folder was written by {by}; this is {__version__}: sample and evaluate it with the "
                f"version that wrote it, or retrain)")
