"""Collapse and duplication, in pixels, so that no feature network can hide them.

A generator that paints one blob for every sample can score a fine precision, density or even FID in a feature
space that maps many images to one point (a weak self-supervised net does). Pixels cannot be fooled that way, so
every evaluation also reports, next to the held-out images' own figures:

* diversity: mean RMS distance between random pairs of samples, and its ratio to the held-out images' (1 = as
  varied as real data, 0 = one image);
* distinct samples: how many groups the samples form when near-duplicates (RMS < ``near_rms``) are merged;
* duplicate fractions: the share of samples with an exact (same 8-bit image) or near duplicate among the others.

and turns them, with the memorisation figures, into two flags with stated reasons, printed above the metrics:
``collapse`` (too little variety) and ``memorisation`` (samples that are copies of training images).
"""
from __future__ import annotations

import torch

from latentforge.data.near_duplicates import near_duplicate_components
from latentforge.metrics.memorisation import knn, pixel_rms
from latentforge.metrics.pixel import mean_pairwise_distance

EXACT_RMS = 0.5 / 255  # closer than half a grey level: the same 8-bit picture
COLLAPSE_DIVERSITY_RATIO = 0.5  # samples less than half as varied as real images
COLLAPSE_DISTINCT_RATIO = 0.5  # less than half as many distinct samples (per sample) as real images have
MEMORISATION_FRACTION = 0.05  # at least 5 % of samples are near-copies of training images ...
MEMORISATION_VS_HELDOUT = 2.0  # ... and at least twice the held-out images' own near-copy rate


def duplication(images: torch.Tensor, near_rms: float) -> dict[str, float]:
    """Within one set of images in [-1, 1]: distinct groups and duplicate fractions (see module docstring)."""
    n = len(images)
    if n < 2:
        return {"distinct": float(n), "distinct_fraction": 1.0, "exact_duplicate_fraction": 0.0,
                "near_duplicate_fraction": 0.0}
    flat = images.reshape(n, -1).double()
    nearest_other = pixel_rms(knn(flat, flat, 2)[0][:, 1], flat.shape[1])
    groups = near_duplicate_components(((flat + 1) / 2), near_rms)
    distinct = int(groups.max()) + 1
    return {"distinct": float(distinct), "distinct_fraction": distinct / n,
            "exact_duplicate_fraction": float((nearest_other < EXACT_RMS).double().mean()),
            "near_duplicate_fraction": float((nearest_other < near_rms).double().mean())}


def diversity_report(fake: torch.Tensor, reference: torch.Tensor, near_rms: float = 0.03) -> dict[str, float]:
    """Sample figures beside the reference (held-out) images' own; `reference` is subsampled to len(fake) at most,
    since duplicate counts grow with the number of images compared."""
    g = torch.Generator().manual_seed(0)
    ref = reference[torch.randperm(len(reference), generator=g)[:len(fake)]]
    sd, rd = mean_pairwise_distance(fake), mean_pairwise_distance(ref)
    out = {"sample_diversity": sd, "reference_diversity": rd, "diversity_ratio": sd / rd if rd > 0 else float("nan"),
           "duplicate_threshold_rms": near_rms}
    out.update({f"sample_{k}": v for k, v in duplication(fake, near_rms).items()})
    out.update({f"reference_{k}": v for k, v in duplication(ref, near_rms).items()})
    out["reference_n"] = len(ref)
    return out


def flags(record: dict) -> dict:
    """`collapse_flag`, `memorisation_flag` and `flag_reasons` (one line each) from an evaluation record."""
    reasons: list[str] = []
    ratio = record.get("diversity_ratio", float("nan"))
    distinct_rel = record["sample_distinct_fraction"] / max(record["reference_distinct_fraction"], 1e-12)
    collapse = False
    if ratio == ratio and ratio < COLLAPSE_DIVERSITY_RATIO:
        collapse = True
        reasons.append(f"collapse: sample diversity is {ratio:.0%} of the held-out images' "
                       f"(< {COLLAPSE_DIVERSITY_RATIO:.0%})")
    if distinct_rel < COLLAPSE_DISTINCT_RATIO:
        collapse = True
        reasons.append(f"collapse: only {record['sample_distinct']:.0f} distinct samples of {record['n_fake']} "
                       f"(held-out images: {record['reference_distinct_fraction']:.0%} distinct)")
    copies = record.get("near_copy_fraction", 0.0)
    held = record.get("heldout_near_copy_fraction", 0.0)
    memorisation = copies >= MEMORISATION_FRACTION and copies >= MEMORISATION_VS_HELDOUT * held
    if memorisation:
        reasons.append(f"memorisation: {copies:.0%} of samples are near-copies of training images "
                       f"(held-out images: {held:.0%})")
    if collapse:
        reasons.append("collapse: precision, density and feature nearest-neighbour ratios are not meaningful for "
                       "collapsed samples; read FID, recall and coverage")
    return {"collapse_flag": collapse, "memorisation_flag": memorisation, "flag_reasons": reasons}
