"""Near-duplicate groups: images that are (almost) the same picture must land in the same train/test split.

A user's folder often holds copies: the same icon saved twice, a resized or recoloured variant, a frame next to a
frame. Split per file, such pairs straddle the split, and the held-out images stop being new (one user's folder had
4 % of its held-out images as near-copies of training images). So for folders and array files the split is made per
*group*, where a group is a connected component of the graph "RMS pixel distance between 16x16 thumbnails below
``threshold``" (plus any grouping the source already had).

Why 16x16 thumbnails and an RMS threshold: area-averaging is a contraction (the RMS difference of two averaged
images is never larger than at full resolution), so two images that the evaluator's memorisation check would call
near-copies (RMS < 0.03 at 32 px or any larger size) are always grouped here with the same threshold; and the
thumbnails keep the all-pairs distance cheap (768 numbers per colour image, ~1 s for 4k images on one core).
The result depends only on the images and their order-free keys, so the split is deterministic across machines.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

THUMBNAIL = 16


def thumbnails(images: torch.Tensor, size: int = THUMBNAIL) -> torch.Tensor:
    """(N, C, H, W) uint8 or float in [0, 1] -> (N, C*s*s) float32 in [0, 1], area-averaged to s = min(size, H)."""
    x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    s = min(size, x.shape[-1], x.shape[-2])
    return F.adaptive_avg_pool2d(x, s).flatten(1)


def near_duplicate_components(vectors: torch.Tensor, threshold_rms: float, progress: bool = False) -> np.ndarray:
    """Component id (N,) of each row of ``vectors`` in the graph "RMS distance < threshold_rms".

    All pairs are compared in chunks; each chunk's edges are reduced to a spanning forest (node -> its component's
    first node) before they are kept, so memory stays O(N * chunks) even when thousands of images are identical.
    """
    n, d = vectors.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    v = vectors.double()
    sq = v.pow(2).sum(1)
    limit = threshold_rms ** 2 * d  # squared Euclidean distance that equals the RMS threshold
    chunk = int(max(64, min(1024, 2e7 // n)))
    rows, cols = [np.arange(n)], [np.arange(n)]
    for s in tqdm(range(0, n, chunk), desc="grouping near-duplicate images", disable=None if progress else True):
        q = v[s:s + chunk]
        d2 = q.pow(2).sum(1, keepdim=True) - 2 * q @ v.T + sq[None]
        i, j = torch.nonzero(d2 < limit, as_tuple=True)
        keep = (i + s) < j  # each undirected pair once, no self-loops
        if not keep.any():
            continue
        a, b = (i[keep] + s).numpy(), j[keep].numpy()
        _, lab = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
        nodes = np.unique(np.concatenate([a, b]))
        rows.append(nodes)
        cols.append(nodes[_first_of(lab[nodes])])
    r, c = np.concatenate(rows), np.concatenate(cols)
    _, labels = connected_components(coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)), directed=False)
    return labels.astype(np.int64)


def group_near_duplicates(images: torch.Tensor, groups: np.ndarray, threshold_rms: float,
                          progress: bool = False) -> np.ndarray:
    """New split keys: images that are near-duplicates of each other, or already shared a key, share one key.

    The key of a merged group is the smallest (as a string) of its members' old keys (for a folder: the first
    relative path), so adding an unrelated image to a folder moves no other image across the split."""
    groups = np.asarray(groups).astype(str)
    if threshold_rms <= 0 or len(groups) < 2:
        return groups
    n = len(groups)
    comp = near_duplicate_components(thumbnails(images), threshold_rms, progress)
    _, old = np.unique(groups, return_inverse=True)  # images that already shared a key stay together
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cols = np.concatenate([_first_of(old), _first_of(comp)])
    _, merged = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)), directed=False)
    order = np.argsort(groups, kind="stable")  # first member by key, per merged group
    key_of = {}
    for idx in order:
        key_of.setdefault(merged[idx], groups[idx])
    return np.array([key_of[m] for m in merged])


def _first_of(labels: np.ndarray) -> np.ndarray:
    """For each element, the index of the first element with the same label."""
    first = np.full(labels.max() + 1, len(labels), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(labels)))
    return first[labels]
