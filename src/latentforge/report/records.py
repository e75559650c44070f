"""What a report reads from a run folder or a sweep folder: files only (config.yaml, run.json, metrics.jsonl,
sample grids and their captions, evaluation grids), so a report never needs the data, the model or a GPU."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from latentforge.errors import LatentforgeError


@dataclass
class Grid:
    step: int
    png: Path
    caption: dict[str, Any]


@dataclass
class RunRecord:
    root: Path
    config: dict[str, Any]
    info: dict[str, Any]
    train: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def model_type(self) -> str:
        return str(self.info.get("model_type") or self.config.get("model_type", "?"))

    @property
    def parameters(self) -> dict[str, int]:
        return dict(self.info.get("task", {}).get("parameters", {}))

    @property
    def last_eval(self) -> dict[str, Any] | None:
        return self.evals[-1] if self.evals else None

    @property
    def last_summary(self) -> dict[str, Any]:
        return self.summaries[-1] if self.summaries else {}

    @property
    def median_img_per_s(self) -> float | None:
        values = sorted(row["img_per_s"] for row in self.train if row.get("img_per_s"))
        return values[len(values) // 2] if values else None

    @cached_property
    def stability(self) -> dict[str, dict[str, Any]]:
        """`run_stability` of the logged losses, computed once (the table and the page both read it)."""
        from latentforge.report.stability import run_stability
        return run_stability(self.train)

    def eval_grid(self, record: dict[str, Any]) -> Path | None:
        """The nearest-training-neighbour grid written by that evaluation, if it is still there."""
        path = self.root / "eval" / f"nearest_step_{int(record['step']):07d}.png"
        return path if path.is_file() else None


@dataclass
class SweepRecord:
    root: Path
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def plot(self) -> Path | None:
        path = self.root / str(self.data.get("plot") or "quality_vs_params.png")
        return path if path.is_file() else None


def is_run(path: Path) -> bool:
    return (path / "run.json").is_file() and (path / "config.yaml").is_file()


def is_sweep(path: Path) -> bool:
    return (path / "sweep.json").is_file()


def read_run(path: str | Path) -> RunRecord:
    root = Path(path)
    if not is_run(root):
        raise LatentforgeError(f"{root} is not a run folder (no run.json and config.yaml): give the folder that "
                               f"`latentforge train --out` created")
    try:
        config = yaml.safe_load((root / "config.yaml").read_text()) or {}
        info = json.loads((root / "run.json").read_text())
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise LatentforgeError(f"{root}: cannot read its config.yaml / run.json ({e})") from None
    rec = RunRecord(root, config, info)
    by_kind = {"train": rec.train, "diagnostic": rec.diagnostics, "summary": rec.summaries, "eval": rec.evals}
    metrics = root / "metrics.jsonl"
    if metrics.is_file():
        for line in metrics.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a line cut by a crash: the rest of the log is still worth reading
                continue
            if isinstance(row, dict) and row.get("kind") in by_kind:
                by_kind[row["kind"]].append(row)
    for png in sorted((root / "samples").glob("step_*.png")):
        caption_path = png.with_suffix(".json")
        try:
            caption = json.loads(caption_path.read_text()) if caption_path.is_file() else {}
        except ValueError:
            caption = {}
        rec.grids.append(Grid(int(png.stem.split("_")[1]), png, caption))
    return rec


def read_sweep(path: str | Path) -> SweepRecord:
    root = Path(path)
    try:
        return SweepRecord(root, json.loads((root / "sweep.json").read_text()))
    except (OSError, ValueError) as e:
        raise LatentforgeError(f"{root}: cannot read sweep.json ({e}); run `latentforge sweep --out {root} "
                               f"--collect` to rebuild it") from None
