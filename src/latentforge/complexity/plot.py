"""The sweep's picture: quality against generator parameters (log scale), one curve per latent with the seed
spread as error bars, and the C_eps thresholds as dashed lines. matplotlib with the Agg backend: no display."""
from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_quality_vs_params(summary: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = summary["metric"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for latent, rows in summary["curves"].items():
        x = [r["params"] for r in rows]
        ax.errorbar(x, [r["mean"] for r in rows], yerr=[r["std"] for r in rows], marker="o", capsize=3, label=latent)
    for entry in summary["c_eps"]:
        ax.axhline(entry["eps"], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("generator parameters")
    ax.set_ylabel(f"{metric.upper()} (lower is better)")
    settings = summary["settings"]
    ax.set_title(f"{settings['data']}: {metric.upper()} vs generator size ({settings['steps']} steps)", fontsize=10)
    ax.legend(title="latent")
    ax.grid(True, which="both", alpha=0.3)
    fig.text(0.01, 0.01, f"features: {summary['feature_network']}", fontsize=6, color="grey")
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path
