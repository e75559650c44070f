"""`latentforge report`: one self-contained HTML page per call, for a person deciding whether a method works on
their data and what it costs. Every figure is embedded as a data: URI and no style sheet, script or font is
fetched, so the page opens offline, can be mailed, and references nothing outside itself.

One run: where training stands, losses and diagnostics, sample grids over training, reconstructions beside their
originals (models that reconstruct), the nearest-training-neighbour grid of the last evaluation, the metrics with
the feature network named and the held-out floor beside them, stability, cost and the full config. Several runs:
the comparison table and the stability overlay first, then each run. A sweep: its quality-vs-parameters plot, the
C_eps table and its cells.
"""
from __future__ import annotations

import base64
import datetime
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from latentforge.errors import LatentforgeError
from latentforge.metrics.guide import FIGURES, reading, reference_value, value_text
from latentforge.report import figures
from latentforge.report.compare import compare_rows, render_table
from latentforge.report.records import RunRecord, SweepRecord, is_run, is_sweep, read_run, read_sweep

MAX_GRIDS = 8
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}
body{color:#222}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.4em}table{border-collapse:collapse;font-size:.9em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}img{image-rendering:pixelated;border:1px solid #ccc;max-width:100%}
figure{display:inline-block;margin:.4em;vertical-align:top}figcaption{font-size:.8em;color:#555;max-width:260px}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:.85em}
.note{background:#fff6e0;border-left:4px solid #e0a800;padding:.5em .8em}
.ok{background:#eaf7ea;border-left:4px solid #3a3;padding:.5em .8em}.muted{color:#777}
"""


def _img(png: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return (f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,'
            f'{base64.b64encode(png).decode("ascii")}">')


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _grid_png(images: Any, nrow: int) -> bytes:
    from latentforge.utils.images import make_grid, to_pil
    buf = io.BytesIO()
    to_pil(make_grid(images, nrow=nrow)).save(buf, format="PNG")
    return buf.getvalue()


def _reconstructions(rec: RunRecord, n: int = 16) -> tuple[bytes | None, str]:
    """Training images (odd columns) beside their reconstructions (even columns), for models that reconstruct.
    Needs the model and the data; when either cannot be loaded the report says why instead."""
    try:
        from latentforge.api import load_run
        from latentforge.data import load_dataset
        from latentforge.train.task import Reconstructs

        loaded = load_run(rec.root, device="cpu")
        if not isinstance(loaded.task, Reconstructs):
            return None, ""
        data = load_dataset(loaded.cfg.data)
        idx = np.arange(min(n, len(data)))
        import torch
        pairs = torch.stack([data.get(idx), loaded.task.reconstruct(idx)], dim=1).flatten(0, 1)
        return _grid_png(pairs, nrow=8), (f"training images (left of each pair) and their reconstructions from "
                                          f"{loaded.task.reconstructs_from} (right), checkpoint step {loaded.step}")
    except LatentforgeError as e:
        return None, f"reconstructions not shown: {e}"
    except Exception as e:  # noqa: BLE001 - a report must still be written; say what was left out
        return None, f"reconstructions not shown: {type(e).__name__}: {e}"


def _metrics_section(rec: RunRecord) -> str:
    ev = rec.last_eval
    if ev is None:
        return ("<p class='muted'>Not evaluated yet: <code>latentforge eval "
                f"{html.escape(str(rec.root))}</code> adds FID, KID, precision/recall and memorisation figures, "
                "and the next report shows them.</p>")
    rows = [[fig.label, value_text(fig, ev), reference_value(fig, ev), fig.better, fig.meaning]
            for fig in FIGURES if fig.key in ev]
    flags = [f for f in ("collapse_flag", "memorisation_flag") if ev.get(f)]
    out = [f"<p>Feature network: <b>{html.escape(str(ev.get('feature_network')))}</b>; "
           f"{ev.get('n_fake')} samples against {ev.get('n_reference')} held-out images "
           f"(split: {html.escape(str(ev.get('reference_split')))}), checkpoint step {ev.get('step')}.</p>",
           _table(["metric", "value", "held-out images", "better", "what it measures"], rows),
           f"<p><b>Reading:</b> {html.escape(reading(ev))}.</p>"]
    if flags:
        reasons = "; ".join(map(str, ev.get("flag_reasons", [])))
        out.insert(0, f"<p class='note'><b>{', '.join(f.removesuffix('_flag') for f in flags)}</b>: "
                      f"{html.escape(reasons)}</p>")
    return "".join(out)


def _cost_section(rec: RunRecord) -> str:
    info = rec.info
    rows = [["training time", info.get("duration_s"), "s, summed over sessions"],
            ["sessions", info.get("sessions"), ""],
            ["speed (median)", rec.median_img_per_s, "img/s"],
            ["peak memory", info.get("peak_memory_mib"), f"MiB ({info.get('peak_memory_kind', 'not recorded')})"],
            ["device", info.get("device"), f"{info.get('threads')} threads"],
            ["batch", info.get("batch_size"), f"{info.get('steps_per_epoch')} steps per epoch"]]
    rows += [[f"parameters: {k}", v, ""] for k, v in rec.parameters.items()]
    if rec.last_eval and rec.last_eval.get("eval_seconds") is not None:
        rows.append(["last evaluation", rec.last_eval["eval_seconds"], "s"])
    return _table(["cost", "value", "unit"], rows)


def _stability_section(rec: RunRecord) -> str:
    stab = rec.stability
    if not stab:
        return "<p class='muted'>No losses logged.</p>"
    rows = [[k, None if s["relative_wobble"] is None else f"{100 * s['relative_wobble']:.2g}", s["spikes"],
             None if s["max_spike_ratio"] is None else f"{s['max_spike_ratio']:.3g}", s["points"]]
            for k, s in stab.items()]
    return (_table(["logged term", "wobble around trend [%]", "spikes", "largest point / trend",
                    "points (2nd half)"], rows)
            + "<p class='muted'>Second half of training, interval-averaged logged losses; a spike is a point more "
              "than 6 robust deviations above the rolling-median trend.</p>")


def run_section(rec: RunRecord, with_model: bool = True) -> str:
    info, cfg = rec.info, rec.config
    ds = info.get("dataset", {})
    parts = [f"<h2 id='{html.escape(rec.name)}'>{html.escape(rec.name)}</h2>",
             f"<p>{html.escape(rec.model_type)} on <b>{html.escape(str(ds.get('name')))}</b> "
             f"({ds.get('count')} training images, "
             f"{ds.get('resolution')}x{ds.get('resolution')}x{ds.get('channels')}), "
             f"preset {html.escape(str(cfg.get('preset')))}; "
             + (f"state <b>{html.escape(str(info['state']))}</b> at step {info.get('step')} of "
                f"{cfg.get('train', {}).get('steps')}.</p>" if "state" in info else
                "training state not recorded (a run folder from before run.json kept it).</p>")]
    last = rec.diagnostics[-1] if rec.diagnostics else {}
    if last.get("note"):
        level = "ok" if last.get("note_level") == "ok" else "note"
        parts.append(f"<p class='{level}'>{html.escape(last['note'])} (step {last['step']})</p>")
    parts.append("<h3>Metrics</h3>" + _metrics_section(rec))
    parts.append("<h3>Training</h3>")
    for fig in (figures.loss_curves(rec), figures.diagnostics(rec)):
        if fig is not None:
            parts.append(f"<figure>{_img(fig, 'training curve')}</figure>")
    parts.append("<h3>Stability</h3>" + _stability_section(rec))
    if rec.grids:
        chosen = rec.grids if len(rec.grids) <= MAX_GRIDS else [
            rec.grids[int(round(i))] for i in np.linspace(0, len(rec.grids) - 1, MAX_GRIDS)]
        parts.append("<h3>Samples over training</h3>")
        for g in chosen:
            ratios = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in g.caption.items()
                               if k.endswith("_ratio") and isinstance(v, float))
            caption = f"step {g.step}" + (f": {html.escape(ratios)}" if ratios else "")
            parts.append(f"<figure>{_img(g.png.read_bytes(), f'samples at step {g.step}', 256)}"
                         f"<figcaption>{caption}</figcaption></figure>")
    if with_model:
        png, caption = _reconstructions(rec)
        if png is not None:
            parts.append(f"<h3>Reconstructions</h3><figure>{_img(png, 'reconstructions', 512)}"
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        elif caption:
            parts.append(f"<h3>Reconstructions</h3><p class='muted'>{html.escape(caption)}</p>")
    if rec.last_eval is not None and (nn := rec.eval_grid(rec.last_eval)) is not None:
        parts.append(f"<h3>Nearest training neighbours (memorisation)</h3><figure>{_img(nn.read_bytes(), 'nearest')}"
                     "<figcaption>each row: a sample (left), then its nearest training images, closest first; copies would look identical"
                     "</figcaption></figure>")
    parts.append("<h3>Cost</h3>" + _cost_section(rec))
    parts.append("<h3>Config</h3><pre>" + html.escape(yaml.safe_dump(cfg, sort_keys=False)) + "</pre>")
    return "\n".join(parts)


def sweep_section(sw: SweepRecord) -> str:
    d = sw.data
    parts = [f"<h2>{html.escape(sw.name)}: the complexity study</h2>",
             f"<p>{d.get('n_done')} cells done, {d.get('n_failed')} failed, {d.get('n_pending')} pending; metric "
             f"{html.escape(str(d.get('metric')))} in feature network "
             f"<b>{html.escape(str(d.get('feature_network')))}</b>.</p>"]
    if sw.plot is not None:
        parts.append(f"<figure>{_img(sw.plot.read_bytes(), 'quality vs parameters')}</figure>")
    for block in d.get("c_eps", []):
        parts.append(f"<h3>C_eps at eps = {block['eps']:.4g} ({html.escape(str(block.get('eps_source', '')))})</h3>")
        parts.append(_table(["latent", "C_eps (G params)", "reached", "best", "at params", "rank"],
                            [[r["latent"], r["c_eps"], r["reached"], r["best"], r["best_params"], r.get("rank")]
                             for r in block.get("table", [])]))
    cells = d.get("cells", [])
    if cells:
        parts.append("<h3>Cells</h3>" + _table(
            ["cell", "latent", "width", "seed", "G params", "train s", d.get("metric", "fid"), "status"],
            [[c["cell"], c.get("latent"), c.get("width"), c.get("seed"), c.get("generator_parameters"),
              c.get("wall_s"), (c.get("metrics") or {}).get(d.get("metric", "fid")), c.get("status")] for c in cells]))
    return "\n".join(parts)


def build_report(paths: list[str | Path], with_model: bool = True) -> str:
    """The HTML text for these run and/or sweep folders."""
    runs, sweeps = [], []
    for p in map(Path, paths):
        if is_run(p):
            runs.append(read_run(p))
        elif is_sweep(p):
            sweeps.append(read_sweep(p))
        else:
            raise LatentforgeError(f"{p} is neither a run folder (run.json + config.yaml) nor a sweep folder "
                                   f"(sweep.json)")
    title = runs[0].name if len(runs) == 1 and not sweeps else f"{len(runs)} runs, {len(sweeps)} sweeps"
    body = [f"<h1>latentforge report: {html.escape(title)}</h1>",
            f"<p class='muted'>Written {datetime.datetime.now().isoformat(timespec='seconds')} from the run folders "
            f"alone; every figure is embedded.</p>"]
    if len(runs) > 1:
        ids, rows, headers = compare_rows(runs)
        footer = render_table(ids, rows, headers).splitlines()[-1]  # which feature network(s), or "not evaluated"
        body.append("<h2>Comparison</h2>" + _table([headers[c] for c in ids], [[r.get(c) for c in ids] for r in rows])
                    + f"<p class='muted'>{html.escape(footer)}</p>")
        overlay = figures.stability_overlay(runs)
        if overlay is not None:
            body.append(f"<figure>{_img(overlay, 'stability')}</figure>")
    body += [sweep_section(s) for s in sweeps]
    body += [run_section(r, with_model) for r in runs]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def write_report(paths: list[str | Path], out: str | Path | None = None, with_model: bool = True) -> Path:
    """Write the report (default: report.html inside the first folder) and return its path."""
    from latentforge.utils.io import atomic_write_text

    if not paths:
        raise LatentforgeError("give at least one run or sweep folder")
    target = Path(out) if out else Path(paths[0]) / "report.html"
    atomic_write_text(target, build_report(paths, with_model))
    return target
