"""The read-outs benchmarks derive from their tables and kept samples (no training: rows and samples are made by
hand)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from small_data import aggregate, crossovers, markdown_rows, merge_earlier, pair_grid  # noqa: E402


def _row(set_name, model, fid, budget=1800.0):
    return {"set": set_name, "model": model, "budget_s": budget, "fid_shown": fid}


def test_crossover_is_the_first_size_where_deae_loses_to_the_best_gan():
    summary = [_row("mnist-100", "deae", 45.0), _row("mnist-100", "dcgan-da", 55.0), _row("mnist-100", "dcgan", 80.0),
               _row("mnist-1000", "deae", 60.0), _row("mnist-1000", "dcgan-da", 70.0),
               _row("mnist-1000", "dcgan", 58.0),
               _row("mnist-8982", "deae", 142.0), _row("mnist-8982", "dcgan", 38.5),
               _row("mnist-300", "deae", 50.0)]  # no GAN measured at 300: not a point of the comparison
    [c] = crossovers(summary)
    assert (c["dataset"], c["budget_s"], c["crossover_size"]) == ("mnist", 1800.0, 1000)
    assert [(x["size"], x["gan"], x["deae_wins"]) for x in c["sizes"]] == [
        (100, "dcgan-da", True), (1000, "dcgan", False), (8982, "dcgan", False)]


def test_no_crossover_while_deae_wins_everywhere_and_budgets_are_read_apart():
    summary = [_row("emoji-100", "deae", 100.0), _row("emoji-100", "dcgan-da", 245.0),
               _row("emoji-100", "deae", 300.0, budget=600.0), _row("emoji-100", "dcgan-da", 200.0, budget=600.0)]
    by_budget = {c["budget_s"]: c["crossover_size"] for c in crossovers(summary)}
    assert by_budget == {600.0: 100, 1800.0: None}


def test_earlier_rows_fill_only_the_cells_the_run_folder_lacks_and_keep_their_cpu():
    found = [{"set": "mnist-300", "model": "deae", "seed": 1, "budget_s": 600.0, "fid": 80.0, "cpu": "new"}]
    earlier = {"cpu": "old", "rows": [
        {"set": "mnist-300", "model": "deae", "seed": 1, "budget_s": 600.0, "fid": 99.0},  # rerun: replaced
        {"set": "mnist-300", "model": "deae", "seed": 0, "budget_s": 600.0, "fid": 86.7},
        {"set": "mnist-300", "model": "dcgan-da", "seed": 1, "budget_s": 600.0, "fid": 108.8, "cpu": "other"}]}
    merged = merge_earlier(found, earlier)
    assert sorted((r["model"], r["seed"], r["fid"], r["cpu"]) for r in merged) == [
        ("dcgan-da", 1, 108.8, "other"), ("deae", 0, 86.7, "old"), ("deae", 1, 80.0, "new")]
    assert merge_earlier(found, {}) == found


def test_pair_grid_puts_the_first_runs_samples_above_the_second_runs(tmp_path):
    import numpy as np
    from PIL import Image

    np.save(tmp_path / "top.npy", np.zeros((40, 1, 32, 32), np.uint8))
    np.save(tmp_path / "bottom.npy", np.full((40, 1, 32, 32), 200, np.uint8))
    pair_grid(tmp_path / "top.npy", tmp_path / "bottom.npy", tmp_path / "g.png")
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    tile = 96 + 2  # 32 px enlarged 3x, a 2 px border
    assert grid.shape == (8 * tile + 2, 8 * tile + 2)  # 32 + 32 samples, 8 to a row
    assert grid[2:tile, 2:tile].max() == 0 and grid[3 * tile + 2:4 * tile, 7 * tile + 2:8 * tile].max() == 0
    assert grid[4 * tile + 2:5 * tile, 2:tile].min() == 200 and grid[-tile:-2, -tile:-2].min() == 200


def test_markdown_rows_show_each_seed_then_the_mean_with_the_fid_of_the_sets_reference():
    def run(set_name, seed, fid, fid_train):
        return {"set": set_name, "model": "deae", "seed": seed, "budget_s": 1800.0, "steps": 4000 + seed,
                "fid": fid, "fid_train": fid_train, "kid": 0.1, "recall": 0.2, "coverage": 0.3,
                "near_copy_fraction": 0.0, "heldout_near_copy_fraction": 0.002, "nn_feature_ratio_vs_heldout": 1.5,
                "sample_distinct_fraction": 1.0, "feature_network": "effnet-lite0-imagenet"}
    rows = [run("mnist-100", 0, 99.0, 40.0), run("mnist-100", 1, 99.0, 50.0), run("mnist-300", 0, 30.0, 9.0)]
    lines = markdown_rows(rows, aggregate(rows), ["mnist-100", "mnist-300"])
    assert [line.split(" | ")[:6] for line in lines] == [
        ["| mnist-100, seed 0", "30 min", "DeAE", "4,000", "40.0", "train"],
        ["| mnist-100, seed 1", "30 min", "DeAE", "4,001", "50.0", "train"],
        ["| mnist-100, 2 seeds", "30 min", "DeAE", "4,000", "45.0 ± 7.1", "train"],  # the sample std
        ["| mnist-300, seed 0", "30 min", "DeAE", "4,000", "30.0", "held-out"]]
    assert all(line.count("|") == 13 for line in lines)
