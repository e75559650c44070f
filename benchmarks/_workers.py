"""Running benchmark cells as subprocesses, one thread each, `jobs` at once (one per core): the pattern every
multi-cell benchmark here uses. A worker is the benchmark script itself with `--worker ...` arguments; it prints its
result as one JSON line last. A stopped benchmark (Ctrl-C, `timeout`) kills its workers, so they cannot skew what
runs next on the machine."""
from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

_WORKERS: set[subprocess.Popen] = set()


def add_pool_arguments(p: argparse.ArgumentParser, default_out: Path, cell_keys: tuple[str, ...]) -> None:
    """--jobs, --runs, --out, and the hidden arguments a worker gets: --worker, --run-root, --dataset, --seed and
    the benchmark's own `cell_keys` (e.g. "--model")."""
    p.add_argument("--jobs", type=int, default=2, help="cells at once (one per core)")
    p.add_argument("--runs", default=None, help="where the run folders go (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=default_out)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--run-root", help=argparse.SUPPRESS)
    p.add_argument("--dataset", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    for key in cell_keys:
        p.add_argument(key, help=argparse.SUPPRESS)


def run_worker(script: str, argv: list[str]) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, script, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _WORKERS.add(proc)
    out, err = proc.communicate()
    _WORKERS.discard(proc)
    if proc.returncode != 0:
        return {"error": err[-2000:], "argv": argv}
    return json.loads(out.strip().splitlines()[-1])


def _stop_workers(*_: object) -> None:
    for proc in list(_WORKERS):
        proc.kill()
    os._exit(130)


def run_cells(script: str, cells: dict[Any, list[str]], jobs: int,
              on_done: Callable[[Any, dict], None] | None = None) -> dict[Any, dict[str, Any]]:
    """Run every cell's worker (`cells`: key -> worker argv), `jobs` at once; results by key."""
    signal.signal(signal.SIGTERM, _stop_workers)
    signal.signal(signal.SIGINT, _stop_workers)
    results: dict[Any, dict[str, Any]] = {}
    with cf.ThreadPoolExecutor(jobs) as pool:
        futs = {pool.submit(run_worker, script, argv): key for key, argv in cells.items()}
        for fut in cf.as_completed(futs):
            key, res = futs[fut], fut.result()
            results[key] = res
            print(f"done {key}: {'ERROR ' + res['error'][-300:] if 'error' in res else 'ok'}", flush=True)
            if on_done is not None:
                on_done(key, res)
    return results


def warm_feature_networks(datasets: list[str], resolution: int) -> None:
    """Train (or find cached) each dataset's evaluation network once, before parallel workers would all need it."""
    from latentforge.api import _train_and_heldout
    from latentforge.config import DataConfig
    from latentforge.metrics.evaluate import resolve_features

    for d in datasets:
        resolve_features("auto", *_train_and_heldout(DataConfig(name=d, resolution=resolution)), progress=False)


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    import numpy as np

    v = np.array([x for x in values if x is not None], dtype=float)
    if not len(v):
        return None, None
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else 0.0)
