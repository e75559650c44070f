"""One table across runs: the same figures side by side, with units, for `latentforge compare` and the reports.

Generation metrics depend on the feature network they were computed in, so a metric column holds one network's
values only: runs scored in different networks get separate columns (the header names the network), never one
column that silently mixes them.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from latentforge import records
from latentforge.report.records import RunRecord


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    unit: str
    fmt: str  # format spec for numbers
    get: Callable[[RunRecord], Any]
    network_bound: bool = False  # a generation metric: one column per feature network


def _data_label(d: dict[str, Any]) -> str:
    """'emoji 32px', or for a prior 'emoji latents 4x8x8' (its training data are an encoder's latents)."""
    if d.get("kind") == "latents":
        side = d.get("resolution", "?")
        return f"{d.get('name', '?')} latents {d.get('channels', '?')}x{side}x{side}"
    return f"{d.get('name', '?')} {d.get('resolution', '?')}px"


def _eval(key: str) -> Callable[[RunRecord], Any]:
    key = records.field("eval", key)
    return lambda r: (r.last_eval or {}).get(key)


def _stab(loss: str, key: str) -> Callable[[RunRecord], Any]:
    return lambda r: r.stability.get(loss, {}).get(key)


def _summary(key: str) -> Callable[[RunRecord], Any]:
    """The last session's summary figure; for a run still training, the last diagnostic's, when it has one."""
    in_diagnostic = key in records.keys("diagnostic")[1]
    key = records.field("summary", key)

    def get(r: RunRecord) -> Any:
        if r.last_summary.get(key) is not None:
            return r.last_summary[key]
        return r.diagnostics[-1].get(key) if (in_diagnostic and r.diagnostics) else None
    return get


COLUMNS: tuple[Column, ...] = (
    Column("model", "model", "", "", lambda r: r.model_type),
    Column("data", "data", "", "", lambda r: _data_label(r.info.get("dataset", {}))),
    Column("parameters", "params", "M", ".3g", lambda r: sum(r.parameters.values()) / 1e6 if r.parameters else None),
    Column("step", "steps", "", "d", lambda r: r.info.get("step")),
    Column("train_seconds", "train time", "s", ".0f", lambda r: r.info.get("duration_s")),
    Column("img_per_s", "speed", "img/s", ".0f", lambda r: r.median_img_per_s),
    Column("peak_memory_mib", "peak mem", "MiB", ".0f", lambda r: r.info.get("peak_memory_mib")),
    Column("device", "device", "", "", lambda r: r.info.get("device")),
    Column("fid", "FID", "", ".2f", _eval("fid"), True),
    Column("fid_floor", "FID floor", "", ".2f", _eval("fid_heldout_vs_train"), True),
    Column("kid", "KID", "", ".3g", _eval("kid"), True),
    Column("precision", "precision", "", ".2f", _eval("precision"), True),
    Column("recall", "recall", "", ".2f", _eval("recall"), True),
    Column("coverage", "coverage", "", ".2f", _eval("coverage"), True),
    Column("diversity_ratio", "diversity", "x data", ".2f", _eval("diversity_ratio")),
    Column("flags", "flags", "", "", lambda r: ",".join(k.removesuffix("_flag") for k in (records.field("eval", "collapse_flag"),
                      records.field("eval", "memorisation_flag")) if (r.last_eval or {}).get(k)) or None),
    Column("pattern_discrimination_ratio", "pattern discr.", "", ".2f", _summary("pattern_discrimination_ratio")),
    Column("recon_rms_heldout", "recon held-out", "RMS", ".4f", _summary("recon_rms_heldout")),
    Column("loss_wobble", "loss wobble", "%", ".1f",
           lambda r: None if (v := _stab("loss", "relative_wobble")(r)) is None else 100 * v),
    Column("loss_spikes", "loss spikes", "", "d", _stab("loss", "spikes")),
    Column("final_loss", "final loss", "", ".4g", lambda r: r.train[-1].get("loss") if r.train else None),
)


def _network(r: RunRecord) -> str | None:
    return (r.last_eval or {}).get("feature_network")


def compare_rows(records: list[RunRecord]) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """(column ids, one dict per run, {column id: header}). Network-bound metrics get one column per feature
    network, `fid@<network>`; runs never evaluated leave those columns empty."""
    networks = sorted({n for r in records if (n := _network(r))})
    ids, headers, rows = ["run"], {"run": "run"}, [{"run": r.name} for r in records]
    for col in COLUMNS:
        targets = [(f"{col.key}@{n}", n) for n in networks] if col.network_bound else [(col.key, None)]
        for cid, net in targets or [(col.key, None)]:
            values = [col.get(r) if (net is None or _network(r) == net) else None for r in records]
            if all(v is None for v in values):
                continue
            ids.append(cid)
            unit = f" [{col.unit}]" if col.unit else ""
            headers[cid] = col.label + unit + (f" ({net})" if net and len(networks) > 1 else "")
            for row, v in zip(rows, values, strict=True):
                row[cid] = v
    return ids, rows, headers


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return format(value, spec)
        except ValueError:
            return format(float(value), ".4g")
    return str(value)


def _spec(cid: str) -> str:
    base = cid.split("@")[0]
    return next((c.fmt for c in COLUMNS if c.key == base), "")


def render_table(ids: list[str], rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    """A plain-text table: one run per row, then a line naming the feature network(s)."""
    cells = [[headers[c] for c in ids]] + [[_fmt(row.get(c), _spec(c)) for c in ids] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(ids))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(line, widths, strict=True)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    networks = sorted({c.split("@", 1)[1] for c in ids if "@" in c})
    if networks:
        lines.append("generation metrics in feature network " + " / ".join(networks)
                     + ("; different networks are in separate columns, never compared" if len(networks) > 1 else ""))
    else:
        lines.append("no run has been evaluated yet: `latentforge eval RUNDIR` adds FID, recall and the rest")
    return "\n".join(lines)


def to_csv(ids: list[str], rows: list[dict[str, Any]], headers: dict[str, str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([headers[c] for c in ids])
    for row in rows:
        w.writerow(["" if row.get(c) is None else row.get(c) for c in ids])
    return buf.getvalue()


def write_comparison(ids: list[str], rows: list[dict[str, Any]], headers: dict[str, str],
                     json_path: Path | None = None, csv_path: Path | None = None) -> None:
    from latentforge.utils.io import atomic_write_text

    if json_path is not None:
        atomic_write_text(Path(json_path), json.dumps({"columns": [{"id": c, "header": headers[c]} for c in ids],
                                                       "rows": rows}, indent=2, default=str))
    if csv_path is not None:
        atomic_write_text(Path(csv_path), to_csv(ids, rows, headers))
