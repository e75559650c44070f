"""Training stability, the DeAE paper's key claim, as numbers: how much a loss curve wobbles around its own trend
and how often it spikes. Computed on the logged (interval-averaged) losses of the second half of training, after
the initial fall, so that a fast early descent is not counted as instability."""
from __future__ import annotations

from typing import Any

import numpy as np

SPIKE_MADS = 6.0  # a point is a spike when its residual from the trend exceeds this many robust deviations
MIN_POINTS = 8


def _rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.pad(x, half, mode="edge")
    return np.array([np.median(padded[i:i + window]) for i in range(len(x))])


def loss_stability(losses: list[float], window: int = 9) -> dict[str, Any]:
    """{relative_wobble, spikes, spike_fraction, max_spike_ratio, points}; relative_wobble is the residual standard
    deviation around a rolling-median trend divided by the mean absolute loss level. None values when too short."""
    x = np.asarray([v for v in losses if v is not None and np.isfinite(v)], dtype=np.float64)
    x = x[len(x) // 2:]
    if len(x) < MIN_POINTS:
        return {"relative_wobble": None, "spikes": None, "spike_fraction": None, "max_spike_ratio": None,
                "points": int(len(x))}
    trend = _rolling_median(x, min(window, len(x) | 1))
    resid = x - trend
    mad = 1.4826 * np.median(np.abs(resid - np.median(resid))) + 1e-12
    level = float(np.mean(np.abs(x))) + 1e-12
    spikes = resid > SPIKE_MADS * mad
    return {"relative_wobble": float(resid.std() / level), "spikes": int(spikes.sum()),
            "spike_fraction": float(spikes.mean()),
            "max_spike_ratio": float((x / np.maximum(np.abs(trend), 1e-12)).max()), "points": int(len(x))}


def run_stability(train_rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stability of every loss a run logs (DeAE: loss; GAN: the discriminator's `loss` and the generator's
    `g_loss`)."""
    out = {}
    for key in ("loss", "g_loss"):
        series = [r[key] for r in train_rows if key in r]
        if series:
            out[key] = loss_stability(series)
    return out
