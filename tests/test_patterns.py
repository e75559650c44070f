import numpy as np
import pytest
import torch

from latentforge.latents.patterns import DropoutPatterns, PatternSpec, hash_uniform, kmeans_clusters

CH = (128, 256, 512)


def test_khot_deterministic_and_exact_counts():
    p = DropoutPatterns(PatternSpec(CH, "khot", (1, 4, 16), seed=7))
    a = p.for_examples(np.arange(500))
    b = DropoutPatterns(PatternSpec(CH, "khot", (1, 4, 16), seed=7)).for_examples(np.arange(500))
    for ma, mb, k, c in zip(a, b, (1, 4, 16), CH):
        assert ma.shape == (500, c)
        assert torch.equal(ma, mb)
        assert torch.all(ma.sum(1) == k)
        assert set(ma.unique().tolist()) == {0.0, 1.0}  # plain 0/1, no rescaling


def test_pattern_depends_only_on_seed_and_index():
    p = DropoutPatterns(PatternSpec(CH, seed=3))
    full = p.for_examples(np.arange(100))
    single = p.for_examples([42])
    assert all(torch.equal(f[42:43], s) for f, s in zip(full, single))
    other_seed = DropoutPatterns(PatternSpec(CH, seed=4)).for_examples(np.arange(100))
    assert not torch.equal(full[2], other_seed[2])


def test_patterns_distinct_across_examples():
    masks = DropoutPatterns(PatternSpec(CH, seed=0)).for_examples(np.arange(5000))
    joint = torch.cat(masks, 1)
    assert len(torch.unique(joint, dim=0)) == 5000
    # the single first-level channel is spread evenly over the 128 channels
    counts = masks[0].sum(0)
    assert counts.min() > 5000 / 128 * 0.5 and counts.max() < 5000 / 128 * 1.6


def test_bernoulli_drop_rate():
    p = DropoutPatterns(PatternSpec(CH, "bernoulli", keep_prob=(0.3, 0.5, 0.7), seed=1))
    masks = p.for_examples(np.arange(2000))
    for m, q in zip(masks, (0.3, 0.5, 0.7)):
        assert abs(m.mean().item() - q) < 0.01


def test_fresh_patterns_same_distribution_but_new():
    p = DropoutPatterns(PatternSpec(CH, seed=0))
    train = torch.cat(p.for_examples(np.arange(2000)), 1)
    fresh = torch.cat(p.fresh(np.arange(2000)), 1)
    assert torch.equal(fresh.sum(1), train.sum(1))  # same k-hot counts
    both = torch.cat([train, fresh])
    assert len(torch.unique(both, dim=0)) == 4000
    assert torch.equal(torch.cat(p.fresh(np.arange(10)), 1), fresh[:10])  # reproducible


def test_hash_uniform_is_uniform():
    u = hash_uniform(0, np.arange(10000), 0, 8).ravel()
    assert 0.0 <= u.min() and u.max() < 1.0
    hist, _ = np.histogram(u, bins=10, range=(0, 1))
    assert np.all(np.abs(hist - 8000) < 400)


def test_clustered_first_level_falls_in_cluster_block():
    clusters = np.arange(64) % 32
    p = DropoutPatterns(PatternSpec(CH, seed=0), clusters=clusters, n_clusters=32)
    m0 = p.for_examples(np.arange(64))[0]
    active = m0.argmax(1).numpy()
    assert np.array_equal(active // 4, clusters)
    fresh = p.fresh(np.arange(3000))[0]
    assert torch.all(fresh.sum(1) == 1)
    freq = np.bincount(fresh.argmax(1).numpy() // 4, minlength=32)
    assert freq.min() > 3000 / 32 * 0.5  # clusters drawn with their (here uniform) training frequency


def test_fresh_patterns_keep_to_cluster_blocks_by_frequency_or_open_every_channel_uniformly():
    """Every training example in cluster 5 of 32: `frequency` keeps fresh first-level channels in block 5 (channels
    20-23); `uniform` (the reference's sample.py) draws them over all 128, leaving the training patterns alone."""
    clusters = np.full(200, 5)
    kwargs = dict(clusters=clusters, n_clusters=32)
    freq = DropoutPatterns(PatternSpec(CH, seed=0), **kwargs, sampling="frequency")
    unif = DropoutPatterns(PatternSpec(CH, seed=0), **kwargs, sampling="uniform")
    assert set(freq.fresh(np.arange(2000))[0].argmax(1).numpy() // 4) == {5}
    spread = np.bincount(unif.fresh(np.arange(2000))[0].argmax(1).numpy(), minlength=CH[0])
    assert (spread > 0).sum() == CH[0] and spread.max() < 3 * 2000 / CH[0]
    for a, b in zip(freq.for_examples(np.arange(50)), unif.for_examples(np.arange(50))):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown pattern sampling"):
        DropoutPatterns(PatternSpec(CH, seed=0), **kwargs, sampling="cluster")


def test_kmeans_clusters_groups_similar_images():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.1, (30, 8, 8, 1)) + 0.0
    b = rng.normal(0, 0.1, (30, 8, 8, 1)) + 5.0
    labels = kmeans_clusters(np.concatenate([a, b]).astype(np.float32), 2)
    assert len(set(labels[:30])) == 1 and len(set(labels[30:])) == 1 and labels[0] != labels[30]


def test_bad_specs_rejected():
    with pytest.raises(ValueError):
        PatternSpec(CH, "khot", (1, 4))
    with pytest.raises(ValueError):
        PatternSpec(CH, "khot", (0, 4, 16))
    with pytest.raises(ValueError):
        PatternSpec(CH, "bernoulli", keep_prob=(1.5,))


def test_subclusters_pick_the_second_level_block_and_are_drawn_within_their_cluster():
    """CH = (128, 256, 512): 32 clusters of 4 first-level channels, 16 sub-clusters of 16 second-level channels.
    Sub-cluster j is only ever used by cluster j % 4 here, so fresh patterns must respect that pairing."""
    clusters = np.arange(640) % 4 * 8  # clusters 0, 8, 16, 24
    sub = (np.arange(640) // 4) % 4 * 4 + np.arange(640) % 4  # cluster k // 8 uses sub-clusters {k//8, +4, +8, +12}
    p = DropoutPatterns(PatternSpec(CH, seed=0), clusters, 32, sub, 16)
    m0, m1, _ = p.for_examples(np.arange(640))
    assert np.array_equal(m0.argmax(1).numpy() // 4, clusters)
    assert torch.all(m1.sum(1) == 4)
    blocks = (m1.nonzero()[:, 1] // 16).view(640, 4)
    assert torch.all(blocks == torch.from_numpy(sub)[:, None])  # all four active channels in the sub-cluster's block
    f0, f1, _ = p.fresh(np.arange(4000))
    c, s = f0.argmax(1).numpy() // 4, f1.argmax(1).numpy() // 16
    assert set(c.tolist()) == {0, 8, 16, 24}
    assert np.all(s % 4 == c // 8)  # never a sub-cluster that its cluster does not have
    assert np.bincount(s, minlength=16).min() > 4000 / 16 * 0.6  # frequencies as in training (here uniform)
    with pytest.raises(ValueError, match="need clusters"):
        DropoutPatterns(PatternSpec(CH), None, 0, sub, 16)
    with pytest.raises(ValueError, match="second-level active"):
        DropoutPatterns(PatternSpec(CH, active=(1, 32, 16)), clusters, 32, sub, 16)


def test_kmeans_subclusters_split_each_cluster():
    from latentforge.latents.patterns import kmeans_subclusters

    rng = np.random.default_rng(0)
    centres = np.repeat(np.array([0.0, 3.0, 10.0, 13.0]), 20)[:, None, None, None]
    images = (centres + rng.normal(0, 0.1, (80, 4, 4, 1))).astype(np.float32)
    clusters = np.repeat([0, 1], 40)  # {0, 3} and {10, 13}
    sub = kmeans_subclusters(images, clusters, 2)
    for start in (0, 20, 40, 60):
        assert len(set(sub[start:start + 20])) == 1
    assert sub[0] != sub[20] and sub[40] != sub[60]
    assert np.array_equal(kmeans_subclusters(images, np.zeros(80, dtype=np.int64), 1), np.zeros(80))


def test_fewer_images_than_clusters_give_one_cluster_each():
    images = np.random.default_rng(0).normal(size=(5, 4, 4, 1)).astype(np.float32)
    assert np.array_equal(kmeans_clusters(images, 32), np.arange(5))
