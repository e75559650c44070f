"""Per-example dropout patterns for Deciphering Autoencoders, derived from (seed, index) by a counter-based hash.

The reference implementation stores every mask in an .npz (O(N) memory). Here the pattern of example i is a pure
function of (seed, i, level, channel): a splitmix64 hash turned into a uniform number per channel. k-hot masks keep
the k channels with the smallest numbers, Bernoulli masks keep channels whose number is below p. No table, any
dataset size, and the same patterns on every machine and torch version (numpy uint64 arithmetic wraps by definition).

Fresh patterns for sampling use indices from a disjoint range (the "fresh" stream), so they come from the same
distribution but never coincide with a training example's pattern by construction of the index.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# Fresh (sampling) patterns hash indices offset by 2**62 so they cannot collide with a training index.
FRESH_OFFSET = 1 << 62


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, index: np.ndarray, stream: int, width: int) -> np.ndarray:
    """Uniform numbers in [0, 1), shape (len(index), width), a pure function of (seed, index, stream, column)."""
    index = np.asarray(index, dtype=np.uint64).reshape(-1, 1)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _M1 + np.uint64(stream) * _M2)
        row = _splitmix64(index ^ key)
        cols = np.arange(width, dtype=np.uint64).reshape(1, -1)
        h = _splitmix64(row + cols * _GOLDEN)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class PatternSpec:
    """The rule that defines the pattern distribution: all that sampling needs to know."""

    channels: tuple[int, ...]
    kind: Literal["khot", "bernoulli"] = "khot"
    active: tuple[int, ...] = (1, 4, 16)  # k-hot: channels kept per level
    keep_prob: tuple[float, ...] = (0.5,)  # Bernoulli: keep probability per level (one value broadcasts)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind == "khot":
            if len(self.active) != len(self.channels):
                raise ValueError(f"mask active counts {self.active} must have one entry per masked level {self.channels}")
            for k, c in zip(self.active, self.channels):
                if not 1 <= k <= c:
                    raise ValueError(f"k-hot mask keeps {k} of {c} channels: need 1 <= k <= channels")
        elif self.kind == "bernoulli":
            if len(self.keep_prob) not in (1, len(self.channels)):
                raise ValueError("mask keep_prob needs one value or one per masked level")
            if not all(0.0 < p < 1.0 for p in self.keep_prob):
                raise ValueError("mask keep_prob values must lie in (0, 1)")
        else:
            raise ValueError(f"unknown mask kind {self.kind!r}: use 'khot' or 'bernoulli'")

    def level_prob(self, level: int) -> float:
        return self.keep_prob[0] if len(self.keep_prob) == 1 else self.keep_prob[level]


class DropoutPatterns:
    """Masks for training examples (by index) and fresh masks for sampling (by a sample counter).

    With `clusters` (one int per training example, values in [0, n_clusters)), the active first-level channels
    are restricted to the block of channels of that example's cluster, as in the reference's k-means variant.
    With `subclusters` as well (a cluster within each cluster, values in [0, n_subclusters); not in the reference),
    the second level's active channels are restricted to that sub-cluster's block the same way, so the first two
    levels carry a coarse-to-fine code of the image and the rest of the pattern is random. Fresh patterns follow
    `sampling`: 'frequency' draws the cluster, then the sub-cluster within it, with their training frequencies and
    keeps to their blocks; 'uniform' (the reference's sample.py) draws every level over all its channels.
    """

    def __init__(self, spec: PatternSpec, clusters: np.ndarray | None = None, n_clusters: int = 0,
                 subclusters: np.ndarray | None = None, n_subclusters: int = 0,
                 sampling: Literal["frequency", "uniform"] = "frequency"):
        if sampling not in ("frequency", "uniform"):
            raise ValueError(f"unknown pattern sampling {sampling!r}: use 'frequency' or 'uniform'")
        self.spec, self.sampling = spec, sampling
        self.clusters = None if clusters is None else np.asarray(clusters, dtype=np.int64)
        self.subclusters = None if subclusters is None else np.asarray(subclusters, dtype=np.int64)
        self.n_clusters, self.n_subclusters = n_clusters, n_subclusters
        if self.subclusters is not None and self.clusters is None:
            raise ValueError("sub-clusters need clusters")
        for level, ids, n in ((0, self.clusters, n_clusters), (1, self.subclusters, n_subclusters)):
            if ids is None:
                continue
            name = ("first", "second")[level]
            if spec.kind != "khot":
                raise ValueError("clustered patterns need k-hot masks")
            if level >= len(spec.channels):
                raise ValueError("sub-clusters need a second masked level")
            if spec.channels[level] % n:
                raise ValueError(f"{spec.channels[level]} {name}-level channels do not split into {n} blocks")
            if spec.active[level] > spec.channels[level] // n:
                raise ValueError(f"{name}-level active count exceeds the channels of one cluster block")
        if self.clusters is not None:
            joint = np.zeros((n_clusters, max(1, n_subclusters)))
            np.add.at(joint, (self.clusters, 0 if self.subclusters is None else self.subclusters), 1.0)
            self._cluster_cdf = np.cumsum(joint.sum(1) / joint.sum())
            self._sub_cdf = np.cumsum(joint / np.maximum(joint.sum(1, keepdims=True), 1.0), axis=1)

    def _masks(self, index: np.ndarray, blocks: tuple[np.ndarray | None, ...]) -> list[torch.Tensor]:
        spec, out = self.spec, []
        n_blocks = (self.n_clusters, self.n_subclusters)
        for level, width in enumerate(spec.channels):
            ids = blocks[level] if level < len(blocks) else None
            if ids is not None:
                block = width // n_blocks[level]
                local = _khot(hash_uniform(spec.seed, index, level, block), spec.active[level])
                m = np.zeros((len(index), width), dtype=np.float32)
                rows = np.arange(len(index))[:, None]
                m[rows, ids[:, None] * block + np.arange(block)[None, :]] = local
            else:
                u = hash_uniform(spec.seed, index, level, width)
                m = _khot(u, spec.active[level]) if spec.kind == "khot" else (u < spec.level_prob(level)).astype(np.float32)
            out.append(torch.from_numpy(m))
        return out

    def for_examples(self, index: Sequence[int] | np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """The fixed pattern of each training example: one (B, C_level) float 0/1 tensor per level."""
        index = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, dtype=np.int64)
        if (index < 0).any() or index.max(initial=0) >= FRESH_OFFSET:
            raise ValueError("example indices must lie in [0, 2**62)")
        return self._masks(index, tuple(None if ids is None else ids[index]
                                        for ids in (self.clusters, self.subclusters)))

    def fresh(self, counter: Sequence[int] | np.ndarray) -> list[torch.Tensor]:
        """New patterns from the training distribution; `counter` numbers the samples so they are reproducible."""
        counter = np.asarray(counter, dtype=np.int64) + FRESH_OFFSET
        clusters = subclusters = None
        if self.clusters is not None and self.sampling == "frequency":
            u = hash_uniform(self.spec.seed, counter, 10_000, 2)
            clusters = np.searchsorted(self._cluster_cdf, u[:, 0], side="right").clip(max=self.n_clusters - 1)
            if self.subclusters is not None:
                cdf = self._sub_cdf[clusters]
                subclusters = (u[:, 1:2] >= cdf).sum(1).clip(max=self.n_subclusters - 1)
        return self._masks(counter, (clusters, subclusters))


def _khot(u: np.ndarray, k: int) -> np.ndarray:
    idx = np.argpartition(u, k - 1, axis=1)[:, :k]
    m = np.zeros(u.shape, dtype=np.float32)
    np.put_along_axis(m, idx, 1.0, axis=1)
    return m


def kmeans_subclusters(images: np.ndarray, clusters: np.ndarray, n_subclusters: int, seed: int = 0) -> np.ndarray:
    """Sub-cluster ids in [0, n_subclusters): k-means on the pixels of each cluster's members (a cluster with
    fewer members than n_subclusters gets one sub-cluster per member)."""
    from sklearn.cluster import KMeans

    flat = images.reshape(len(images), -1).astype(np.float32)
    out = np.zeros(len(flat), dtype=np.int64)
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        k = min(n_subclusters, len(members))
        if k > 1:
            out[members] = KMeans(n_clusters=k, random_state=seed, n_init=2).fit_predict(flat[members])
    return out


def kmeans_clusters(images: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Cluster ids for the reference's clustered patterns: standardise, PCA to 95% variance, k-means. Fewer images
    than clusters give one cluster per image (the other clusters' channel blocks then go unused)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    flat = images.reshape(len(images), -1).astype(np.float32)
    if len(flat) <= n_clusters:
        return np.arange(len(flat), dtype=np.int64)
    z = PCA(n_components=0.95, random_state=seed).fit_transform(StandardScaler().fit_transform(flat))
    return KMeans(n_clusters=n_clusters, random_state=seed, n_init=3).fit_predict(z).astype(np.int64)
