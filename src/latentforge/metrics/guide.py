"""How to read an evaluation record: each figure's name, which direction is better, what it is compared with, and a
one-line reading of the whole record. The CLI printout and the HTML report both read this table, so they agree.

The comparison is always with held-out images, the same kind of data the model never saw: a figure "close" to its
held-out value says the samples behave like new data on that axis; "far" says how far they are from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Optional

from latentforge import records


@dataclass(frozen=True)
class Figure:
    key: str                                      # the record's key
    label: str                                    # what a reader calls it
    better: Literal["lower", "higher", "near held-out"]
    reference: Optional[str] = None               # the record key of held-out images' own value
    fixed_reference: Optional[float] = None       # or a value that real data has by definition
    meaning: str = ""                             # what it measures, in a phrase

    def __post_init__(self) -> None:  # a renamed record key fails here, not as a blank row
        for key in (self.key, self.reference):
            if key is not None:
                records.field("eval", key)


FIGURES: tuple[Figure, ...] = (
    Figure("fid", "FID", "lower", "fid_heldout_vs_train",
           meaning="Frechet distance of feature statistics to held-out images; held-out: its floor, held-out vs train"),
    Figure("fid_train", "FID vs train", "lower", meaning="the same against the training images"),
    Figure("kid", "KID", "lower", fixed_reference=0.0, meaning="kernel (MMD) distance, unbiased: 0 = same distribution"),
    Figure("is", "IS", "higher", "is_reference", meaning="Inception Score: confident and varied class predictions"),
    Figure("precision", "precision", "higher", meaning="share of samples inside the real images' k-NN manifold"),
    Figure("recall", "recall", "higher", meaning="share of real images inside the samples' k-NN manifold"),
    Figure("density", "density", "near held-out", fixed_reference=1.0,
           meaning="how many real k-NN balls hold each sample (about 1 for real data)"),
    Figure("coverage", "coverage", "higher",
           meaning="share of real images with a sample inside their k-NN ball (robust to outliers)"),
    Figure("sample_diversity", "diversity (pixel RMS)", "near held-out", "reference_diversity",
           meaning="mean pixel distance between two samples"),
    Figure("sample_distinct_fraction", "distinct samples", "near held-out", "reference_distinct_fraction",
           meaning="share left after merging near-duplicates"),
    Figure("sample_near_duplicate_fraction", "near-duplicate samples", "near held-out",
           "reference_near_duplicate_fraction", meaning="share with a near-identical other sample"),
    Figure("sample_exact_duplicate_fraction", "exact-duplicate samples", "near held-out",
           "reference_exact_duplicate_fraction", meaning="share with an identical other sample"),
    Figure("nn_pixel_rms_median", "NN pixel RMS to train", "near held-out", "heldout_nn_pixel_rms_median",
           meaning="median pixel distance to the nearest training image"),
    Figure("near_copy_fraction", "near copies of train", "near held-out", "heldout_near_copy_fraction",
           meaning="share within the near-copy distance of a training image (memorisation)"),
    Figure("nn_feature_ratio_vs_heldout", "NN feature ratio vs held-out", "near held-out", fixed_reference=1.0,
           meaning="nearest-training-image feature distance over held-out images' own (below 1: copies)"),
)

def reference_value(fig: Figure, rec: dict[str, Any]) -> Optional[float]:
    if fig.reference is not None and rec.get(fig.reference) is not None:
        return float(rec[fig.reference])
    return fig.fixed_reference


def value_text(fig: Figure, rec: dict[str, Any]) -> str:
    v = rec.get(fig.key)
    if v is None:
        return "-"
    std = rec.get(fig.key + "_std")
    return f"{v:.4g}" + (f" ± {std:.2g}" if std is not None else "")


def reading(rec: dict[str, Any], tolerance: float = 1.25) -> str:
    """One line: on which figures the samples are close to held-out images (within `tolerance` x either way, or
    FID within `tolerance` x its floor) and how far they are on the others."""
    close, far = [], []
    for fig in FIGURES:
        v, ref = rec.get(fig.key), reference_value(fig, rec)
        if v is None or ref is None or fig.key in ("kid",):
            continue
        if ref == 0 or v == 0:
            if abs(v - ref) < 0.01:
                close.append(fig.label)
            else:
                far.append(f"{fig.label} ({v:.3g} vs {ref:.3g})")
            continue
        ratio = v / ref
        if 1 / tolerance <= ratio <= tolerance:
            close.append(fig.label)
        else:
            far.append(f"{fig.label} ({ratio:.2g}x held-out's)")
    parts = []
    if close:
        parts.append("close to held-out images on " + ", ".join(close))
    if far:
        parts.append("far on " + ", ".join(far))
    return "; ".join(parts) if parts else "no held-out values to compare with"
