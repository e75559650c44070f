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
