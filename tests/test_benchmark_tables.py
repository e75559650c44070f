"""The read-outs benchmarks derive from their tables (no training: rows are written by hand)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from small_data import crossovers  # noqa: E402


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
