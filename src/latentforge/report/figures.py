"""The report's figures, drawn with matplotlib (Agg: no display) and returned as PNG bytes to embed."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from latentforge.report.records import RunRecord  # noqa: E402

LOSS_KEYS = ("loss", "g_loss", "mse", "laplacian", "lpips")


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def loss_curves(rec: RunRecord) -> bytes | None:
    """Every logged loss term against the step (log scale when it spans more than a decade)."""
    keys = [k for k in LOSS_KEYS if any(k in r for r in rec.train)]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    lo, hi = float("inf"), 0.0
    for k in keys:
        pts = [(r["step"], r[k]) for r in rec.train if k in r]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, lw=1.2)
        vals = [abs(p[1]) for p in pts if p[1] != 0]
        if vals:
            lo, hi = min(lo, min(vals)), max(hi, max(vals))
    if hi > 10 * lo and all(r[k] > 0 for k in keys for r in rec.train if k in r):
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (interval mean)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{rec.name}: training losses", fontsize=10)
    return _png(fig)


def diagnostics(rec: RunRecord) -> bytes | None:
    """Where training stood at each sample grid: ratios (pattern discrimination, sample diversity vs data)."""
    keys = sorted({k for d in rec.diagnostics for k, v in d.items() if k.endswith("_ratio") and isinstance(v, float)})
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    for k in keys:
        pts = [(d["step"], d[k]) for d in rec.diagnostics if k in d]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=k.replace("_", " "))
    ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{rec.name}: diagnostics at each sample grid", fontsize=10)
    return _png(fig)


def stability_overlay(records: list[RunRecord]) -> bytes | None:
    """Each run's main loss divided by its own median over the second half, side by side: wobble and spikes of
    runs with different loss scales (a DeAE's reconstruction loss, a GAN's discriminator loss) on one axis."""
    series = []
    for rec in records:
        for key in ("loss", "g_loss"):
            pts = [(r["step"], r[key]) for r in rec.train if key in r]
            if len(pts) >= 4:
                tail = sorted(abs(v) for _, v in pts[len(pts) // 2:])
                med = tail[len(tail) // 2] or 1.0
                series.append((f"{rec.name} {key}", [p[0] for p in pts], [p[1] / med for p in pts]))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for label, x, y in series:
        ax.plot(x, y, lw=1.0, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss / its median (2nd half)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title("training stability, side by side", fontsize=10)
    return _png(fig)
