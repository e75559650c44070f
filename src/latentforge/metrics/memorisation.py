"""Does a generator copy its training set? For every sample, its nearest training image in pixel space and in
feature space, compared with how far genuinely new images (the held-out split) lie from the training set.

A healthy model's samples sit about as far from the training set as held-out images do (ratio near 1); a memorising
one sits much closer (ratio well below 1) and has many near-copies."""
from __future__ import annotations

import numpy as np
import torch


def knn(queries: torch.Tensor, reference: torch.Tensor, k: int = 1, chunk: int = 1024
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean distances (N, k) and indices (N, k) of each query's k nearest rows of `reference` (float64)."""
    q = queries.reshape(len(queries), -1).double()
    r = reference.reshape(len(reference), -1).double()
    r_sq = r.pow(2).sum(1)
    dists, idx = [], []
    for s in range(0, len(q), chunk):
        qc = q[s:s + chunk]
        d2 = (qc.pow(2).sum(1, keepdim=True) - 2 * qc @ r.T + r_sq[None]).clamp_min(0)
        d, i = d2.topk(min(k, len(r)), dim=1, largest=False)
        dists.append(d.sqrt())
        idx.append(i)
    return torch.cat(dists), torch.cat(idx)


def pixel_rms(distance: torch.Tensor, dims: int) -> torch.Tensor:
    """Euclidean distance between [-1, 1] images -> RMS distance in [0, 1] pixel units."""
    return distance / 2 / dims ** 0.5


def memorisation_report(fake: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor | None,
                        fake_feat: np.ndarray, train_feat: np.ndarray, heldout_feat: np.ndarray | None,
                        near_copy_rms: float = 0.03, k: int = 3) -> tuple[dict[str, float], torch.Tensor]:
    """Figures plus the (N, k) indices of each sample's nearest training images in pixel space (for the grid).

    near_copy_rms: a sample closer than this RMS pixel distance to a training image counts as a near-copy (0.03 is
    the distance below which emoji skin-tone twins fall at 32x32, i.e. 'the same picture')."""
    dims = fake[0].numel()
    d_px, i_px = knn(fake, train, k)
    fake_px = pixel_rms(d_px[:, 0], dims)
    d_ft, _ = knn(torch.from_numpy(fake_feat), torch.from_numpy(train_feat), 1)
    out = {
        "nn_pixel_rms_median": float(fake_px.median()),
        "nn_pixel_rms_p05": float(fake_px.quantile(0.05)),
        "near_copy_fraction": float((fake_px < near_copy_rms).double().mean()),
        "near_copy_threshold_rms": near_copy_rms,
        "nn_feature_median": float(d_ft[:, 0].median()),
    }
    if heldout is not None and len(heldout):
        held_px = pixel_rms(knn(heldout, train, 1)[0][:, 0], dims)
        held_ft = knn(torch.from_numpy(heldout_feat), torch.from_numpy(train_feat), 1)[0][:, 0]
        out.update({
            "heldout_nn_pixel_rms_median": float(held_px.median()),
            "heldout_near_copy_fraction": float((held_px < near_copy_rms).double().mean()),
            "nn_pixel_ratio_vs_heldout": float(fake_px.median() / held_px.median().clamp_min(1e-12)),
            "heldout_nn_feature_median": float(held_ft.median()),
            "nn_feature_ratio_vs_heldout": float(d_ft[:, 0].median() / held_ft.median().clamp_min(1e-12)),
        })
    return out, i_px


def nn_grid(fake: torch.Tensor, train: torch.Tensor, nn_index: torch.Tensor, rows: int = 16) -> torch.Tensor:
    """Rows of [sample, 1st, 2nd, ... nearest training image] for the first `rows` samples, ready for save_grid."""
    rows = min(rows, len(fake))
    tiles = [torch.cat([fake[i:i + 1], train[nn_index[i]]]) for i in range(rows)]
    return torch.cat(tiles)
