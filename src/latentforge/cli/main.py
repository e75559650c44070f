"""`latentforge` command line. Every user-facing failure is one `error:` line and exit code 2, never a traceback."""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import warnings
from pathlib import Path

from latentforge.config.models import MODELS
from latentforge.errors import LatentforgeError
from latentforge.utils.io import ensure_writable

# = latentforge.metrics.evaluate.FEATURE_CHOICES (literal for the same reason; tested)
FEATURE_CHOICES = ("auto", "effnet", "inception", "trained", "classifier", "simclr")
FEATURES_HELP = ("evaluation feature network: auto = Inception if its weights are on disk, else effnet "
                 "(EfficientNet-Lite0 trained on ImageNet, shipped with latentforge); trained = a network trained on "
                 "your data (a classifier on labelled data, else a SimCLR encoder), which rewards colour statistics")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one `error:` line (with where to look) and exit 2, like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see `{self._help_for(message)} --help`)\n")

    given: list[str] = []  # the command line being parsed (main sets it)

    def _help_for(self, message: str) -> str:
        """Unknown arguments are reported by the top-level parser: point to the subcommand's help where one was named."""
        command = self.given[0] if self.given and not self.given[0].startswith("-") else None
        if message.startswith("unrecognized arguments") and command and self.prog == "latentforge":
            return f"{self.prog} {command}"
        return self.prog


def _count(minimum: int):
    """An argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value
    return parse


POSITIVE, NON_NEGATIVE = _count(1), _count(0)


def _preset_help() -> str:
    names = {m: ", ".join(entry.presets) for m, entry in MODELS.items()}
    return ("named configuration: " + "; ".join(f"{m}: {n}" for m, n in names.items())
            + " (default: paper on a GPU, cpu on a CPU)")


def _builds_on_a_run() -> list[str]:
    return [m for m, entry in MODELS.items() if entry.builds_on_a_run]


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="latentforge", description="Latent-space generative modeling of images.",
                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser = functools.partial(sub.add_parser, formatter_class=argparse.RawDescriptionHelpFormatter)

    t = sub.add_parser("train", help="train a model into a run folder", epilog=_example(
        "latentforge train deae --data digits --preset cpu16 --steps 3000 --out runs/deae-digits\n"
        "  latentforge train dae --data emoji --preset cpu --steps 2000 --out runs/dae-emoji\n"
        "  latentforge train prior --from runs/dae-emoji --steps 2000 --out runs/prior-emoji"))
    t.add_argument("model", choices=list(MODELS), help="model to train: " + "; ".join(
        f"{name}: {entry.summary}" for name, entry in MODELS.items()))
    t.add_argument("--data", help="built-in dataset name (see `latentforge datasets`) or a folder / .npy / .npz")
    t.add_argument("--from", dest="from_run", metavar="RUNDIR",
                   help=f"the run this model builds on ({', '.join(_builds_on_a_run())}: the autoencoder whose "
                        "latents it learns; its data too)")
    t.add_argument("--steps", type=POSITIVE, help="total optimizer steps (default: the preset's)")
    t.add_argument("--out", required=True, help="run folder to create (or continue with --resume)")
    t.add_argument("--preset", help=_preset_help())
    t.add_argument("--config", help="YAML file with config overrides")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key, e.g. --set model.optim.lr=1e-3 (repeatable)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar: plain progress lines instead (as off a terminal)")
    t.add_argument("--no-report", action="store_true", help="do not write RUNDIR/report.html at the end")
    t.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: the config's train.device, auto)")

    s = sub.add_parser("sample", help="draw new images from a trained run",
                       epilog=_example("latentforge sample runs/deae-digits --n 64 --out samples.png"))
    s.add_argument("run_dir")
    s.add_argument("--n", type=POSITIVE, default=64, help="number of samples (default: 64)")
    out = s.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="PNG file for one grid")
    out.add_argument("--out-dir", help="folder for one PNG per image")
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    s.add_argument("--bn", choices=["batch", "running"], help="batch-norm statistics when sampling (default: config)")
    s.add_argument("--no-ema", action="store_true", help="use the raw weights instead of their EMA")
    s.add_argument("--step", type=NON_NEGATIVE, help="checkpoint step (default: latest)")
    s.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")

    r = sub.add_parser("reconstruct", help="decode training examples from their own patterns (DeAE)",
                       epilog=_example("latentforge reconstruct runs/deae-digits --indices 0-15 --out recon.png"))
    r.add_argument("run_dir")
    r.add_argument("--indices", default="0-63", help="e.g. 0-63 or 3,17,42")
    r.add_argument("--out", required=True, help="PNG file for the grid")
    r.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")

    i = sub.add_parser("interpolate", help="latent interpolation between pairs of fresh latents",
                       epilog=_example("latentforge interpolate runs/deae-digits --pairs 8 --steps 8 --out interp.png"))
    i.add_argument("run_dir")
    i.add_argument("--pairs", type=POSITIVE, default=8, help="number of interpolated pairs, one row each (default: 8)")
    i.add_argument("--steps", type=_count(2), default=8, help="images per row, endpoints included (default: 8)")
    i.add_argument("--out", required=True, help="PNG file for the grid")
    i.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    i.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")

    e = sub.add_parser("eval", help="score a run's samples: FID, KID, IS, precision/recall, memorisation",
                       epilog=_example("latentforge eval runs/deae-digits --n 1000"))
    e.add_argument("run_dir")
    e.add_argument("--n", type=_count(2), default=1000, help="number of samples to score (default: 1000)")
    e.add_argument("--json", help="also write the record to this file")
    e.add_argument("--features", default="auto", choices=FEATURE_CHOICES, help=FEATURES_HELP)
    e.add_argument("--inception-weights", help="path to pt_inception-2015-12-05-6726825d.pth")
    e.add_argument("--feature-net-steps", type=POSITIVE, default=None,
                   help="training steps of the offline feature network (default: 400 classifier, 500 SimCLR)")
    e.add_argument("--seed", type=int, default=1, help="sampling seed (default: 1)")
    e.add_argument("--bn", choices=["batch", "running"], help="batch-norm statistics when sampling")

    w = sub.add_parser("sweep", help="the complexity study: DCGANs over latents x generator widths x seeds, C_eps",
                       epilog=_example("latentforge sweep --data emoji --latents gaussian,ssl,deae "
                                       "--widths 0.125,0.25,0.5,1 --steps 2000 --out sweeps/emoji"))
    w.add_argument("--out", required=True, help="sweep folder (created, or continued where it stopped)")
    w.add_argument("--data", help="built-in dataset name or a folder / .npy / .npz")
    w.add_argument("--latents", default="gaussian,ssl", help="comma list of gaussian, uniform, ssl, deae, dae")
    w.add_argument("--widths", default="0.125,0.25,0.5,1,2", help="generator width multipliers, comma list")
    w.add_argument("--seeds", type=POSITIVE, default=1, help="number of seeds per cell (seeds 0..N-1)")
    w.add_argument("--seed-list", help="explicit seeds instead, e.g. 2 or 0,3 (one cell per job on a cluster)")
    w.add_argument("--steps", type=POSITIVE, help="training steps of every cell (the equal budget)")
    w.add_argument("--preset", default="cpu", help="DCGAN preset of every cell (default: cpu)")
    w.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every cell, e.g. --set data.resolution=16")
    w.add_argument("--eval-n", type=_count(2), default=1000, help="samples scored per cell")
    w.add_argument("--features", default="auto", choices=FEATURE_CHOICES, help=FEATURES_HELP)
    w.add_argument("--metric", default="fid", choices=["fid", "kid"], help="quality for C_eps (lower is better)")
    w.add_argument("--eps", help="comma list of thresholds (default: quartiles of the measured curves)")
    w.add_argument("--deae-run", help="a trained DeAE run for the deae latent (default: train one in OUT/deae)")
    w.add_argument("--deae-steps", type=POSITIVE, default=3000, help="budget of that DeAE run (cpu preset)")
    w.add_argument("--dae-run", help="a trained autoencoder run (dae or ae) for the dae latent "
                                     "(default: train a DAE in OUT/dae)")
    w.add_argument("--dae-steps", type=POSITIVE, default=2000, help="budget of that DAE run (cpu preset)")
    w.add_argument("--jobs", type=POSITIVE, default=1,
                   help="cells trained at once, each in its own process with an equal share of the threads")
    w.add_argument("--collect", action="store_true", help="only gather finished cells into sweep.json and the plot")
    w.add_argument("--no-progress", action="store_true", help="no progress bars")

    rp = sub.add_parser("report", help="one self-contained HTML page for runs and sweeps (figures embedded)",
                        epilog=_example("latentforge report runs/deae-digits runs/dcgan-digits --out compare.html"))
    rp.add_argument("paths", nargs="+", metavar="RUNDIR|SWEEPDIR", help="run or sweep folders")
    rp.add_argument("--out", help="HTML file to write (default: report.html in the first folder)")
    rp.add_argument("--no-model", action="store_true",
                    help="read files only: skip what needs the model and data (reconstructions)")

    c = sub.add_parser("compare", help="one table of the same figures across runs (terminal, JSON, CSV)",
                       epilog=_example("latentforge compare runs/* --csv runs.csv"))
    c.add_argument("run_dirs", nargs="+", metavar="RUNDIR")
    c.add_argument("--json", help="also write the table as JSON")
    c.add_argument("--csv", help="also write the table as CSV")

    sub.add_parser("datasets", help="list the built-in datasets", epilog=_example("latentforge datasets"))
    return p


def _example(command: str) -> str:
    return f"example:\n  {command}"


def _parse_indices(text: str) -> list[int]:
    out: list[int] = []
    try:
        for part in text.split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise LatentforgeError(f"--indices expects numbers and ranges like 0-15,20 (got {text!r})") from None
    return out


def _cmd_train(a: argparse.Namespace) -> int:
    from latentforge.api import train

    overrides = a.overrides
    if a.from_run:
        if a.model not in _builds_on_a_run():
            raise LatentforgeError(f"--from is for models that build on another run "
                                   f"({', '.join(_builds_on_a_run())}), not {a.model}")
        if a.data:
            raise LatentforgeError("--data cannot be combined with --from: the model uses its source run's data")
        overrides = [f"model.source.run={a.from_run}", *overrides]
    if a.device:
        overrides = [*overrides, f"train.device={a.device}"]
    res = train(a.model, data=a.data, steps=a.steps, out=a.out, preset=a.preset, config_file=a.config,
                overrides=overrides, resume=a.resume, bar=not a.no_progress)
    from latentforge.train.distributed import world

    if not world().is_main:  # under torchrun, rank 0 reports
        return 130 if res.interrupted else 0
    samples = sorted((res.run_dir / "samples").glob("step_*.png"))
    print(json.dumps({k: v for k, v in res.summary.items() if k != "kind"}, indent=2))
    if samples:
        print(f"samples: {samples[-1]}")
    print(f"run folder: {res.run_dir}")
    if not a.no_report:
        _write_report(res.run_dir)
    if res.summary.get("note") and res.summary.get("note_level") != "ok":
        print(f"note: the run ended {res.summary['note']}")
    if res.interrupted:
        print(f"interrupted at step {res.step}; checkpoint saved. Continue with: "
              f"latentforge train {a.model} --out {res.run_dir} --resume", file=sys.stderr)
        return 130  # a script can tell an interrupted run from a finished one
    return 0


def _cmd_sample(a: argparse.Namespace) -> None:
    from latentforge.api import load_run
    from latentforge.utils.images import save_each, save_grid

    target = Path(a.out or a.out_dir)
    ensure_writable(target.parent if a.out else target, "the samples")
    loaded = load_run(a.run_dir, step=a.step, device=a.device)
    images = loaded.task.sample(a.n, seed=a.seed, bn=a.bn, use_ema=not a.no_ema)
    if a.out:
        save_grid(images, target)
        print(f"wrote a grid of {a.n} samples to {target} (step {loaded.step})")
    else:
        save_each(images, target)
        print(f"wrote {a.n} samples to {target}{os.sep} (step {loaded.step})")


def _loaded_with(run_dir: str, device: str, ability: type, verb: str):
    """Load a run and check that its model can do what the command asks (not every model reconstructs)."""
    from latentforge.api import load_run

    loaded = load_run(run_dir, device=device)
    if not isinstance(loaded.task, ability):
        raise LatentforgeError(f"a {loaded.cfg.model_type} run cannot {verb}")
    return loaded


def _cmd_reconstruct(a: argparse.Namespace) -> None:
    from latentforge.train.task import Reconstructs
    from latentforge.utils.images import save_grid

    import torch

    from latentforge.data import load_dataset

    ensure_writable(Path(a.out).parent, "the reconstructions")
    loaded = _loaded_with(a.run_dir, a.device, Reconstructs, "reconstruct training examples")
    index = _parse_indices(a.indices)
    images = loaded.task.reconstruct(index, seed=a.seed)
    originals = load_dataset(loaded.cfg.data).get(torch.as_tensor(index))
    pairs = torch.stack([originals, images.to(originals)], dim=1).flatten(0, 1)
    save_grid(pairs, Path(a.out), nrow=2 * min(4, len(index)))
    print(f"wrote {len(images)} training images (left of each pair) beside their reconstructions (right) to {a.out}")


def _cmd_interpolate(a: argparse.Namespace) -> None:
    from latentforge.train.task import Interpolates
    from latentforge.utils.images import save_grid

    ensure_writable(Path(a.out).parent, "the interpolations")
    loaded = _loaded_with(a.run_dir, a.device, Interpolates, "interpolate")
    images = loaded.task.interpolate(pairs=a.pairs, steps=a.steps, seed=a.seed)
    save_grid(images, Path(a.out), nrow=a.steps)
    print(f"wrote {a.pairs} interpolations of {a.steps} steps to {a.out}")


def _cmd_eval(a: argparse.Namespace) -> None:
    from latentforge.api import evaluate_run

    if a.json:
        ensure_writable(Path(a.json).parent, "the --json record")
    rec = evaluate_run(a.run_dir, n=a.n, features=a.features, seed=a.seed, bn=a.bn,
                       inception_path=a.inception_weights, feature_net_steps=a.feature_net_steps)
    if a.json:
        Path(a.json).write_text(json.dumps(rec, indent=2))
    print_eval(rec)
    if (Path(a.run_dir) / "report.html").is_file():  # keep the run's page current: the new figures land in it
        _write_report(Path(a.run_dir))


def _write_report(run_dir: Path) -> None:
    from latentforge.report.html import write_report

    print(f"report: {write_report([run_dir])}")


def _cmd_report(a: argparse.Namespace) -> None:
    from latentforge.report.html import write_report

    if a.out:
        ensure_writable(Path(a.out).parent, "the report")
    print(f"report: {write_report(a.paths, a.out, with_model=not a.no_model)}")


def _cmd_compare(a: argparse.Namespace) -> None:
    from latentforge.report.compare import compare_rows, render_table, write_comparison
    from latentforge.report.records import read_run

    for target in (a.json, a.csv):
        if target:
            ensure_writable(Path(target).parent, "the comparison")
    ids, rows, headers = compare_rows([read_run(p) for p in a.run_dirs])
    print(render_table(ids, rows, headers))
    write_comparison(ids, rows, headers, a.json and Path(a.json), a.csv and Path(a.csv))


def print_eval(rec: dict) -> None:
    """The evaluation record as a reader needs it: flags first, then each figure beside its reference value."""
    print(f"feature network: {rec['feature_network']}  (reference: {rec['reference_split']} split, "
          f"{rec['n_reference']} images; {rec['n_fake']} samples{_at_step(rec)})")
    info = rec.get("feature_network_info") or {}
    if info.get("weak"):
        print(f"warning: the feature network is weak ({info.get('weak_reason', '')}); its figures rank coarsely")
    if rec.get("model_trained_from"):
        print(f"model trained from: {', '.join(rec['model_trained_from'])} (not used for scoring)")
    for reason in rec.get("flag_reasons", []):
        print(f"FLAG {reason}")
    if not rec.get("flag_reasons"):
        print("flags: none (no collapse, no memorisation)")
    from latentforge.metrics.guide import FIGURES, reading, reference_value, value_text

    collapsed = rec.get("collapse_flag", False)
    print(f"  {'':<30} {'samples':>16}   {'held-out':>8}   better")
    for fig in FIGURES:
        if fig.key not in rec:
            continue
        ref = reference_value(fig, rec)
        note = "  (not meaningful: collapsed)" if collapsed and fig.key in ("precision", "density",
                                                                           "nn_feature_ratio_vs_heldout") else ""
        print(f"  {fig.label:<30} {value_text(fig, rec):>16}   {'' if ref is None else f'{ref:.4g}':>8}   "
              f"{fig.better}{note}")
    print(f"reading: {reading(rec)}")
    if "nn_grid" in rec:
        print(f"nearest-neighbour grid: {rec['nn_grid']}")


def _at_step(rec: dict) -> str:
    return f" at step {rec['step']}" if "step" in rec else ""


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LatentforgeError(f"{what} expects a comma list of numbers (got {text!r})") from None


def _cmd_sweep(a: argparse.Namespace) -> None:
    from latentforge.complexity.sweep import Sweep, SweepSpec

    if a.collect:
        summary = Sweep.from_folder(Path(a.out), progress=not a.no_progress).collect()
    else:
        if a.data is None or a.steps is None:
            raise LatentforgeError("sweep needs --data and --steps (or --collect on an existing sweep folder)")
        spec = SweepSpec(data=a.data, latents=[x.strip() for x in a.latents.split(",") if x.strip()],
                         widths=_floats(a.widths, "--widths"), steps=a.steps,
                         seeds=[int(x) for x in _floats(a.seed_list, "--seed-list")] if a.seed_list
                         else list(range(a.seeds)),
                         preset=a.preset, overrides=a.overrides, eval_n=a.eval_n, metric=a.metric,
                         eps=_floats(a.eps, "--eps") if a.eps else [], deae_run=a.deae_run, deae_steps=a.deae_steps,
                         dae_run=a.dae_run, dae_steps=a.dae_steps, features=a.features)
        summary = Sweep(Path(a.out), spec, progress=not a.no_progress, jobs=a.jobs).run()
    _print_sweep(summary)
    print(f"sweep folder: {a.out}  (sweep.json{', ' + summary['plot'] if 'plot' in summary else ''})")


def _print_sweep(summary: dict) -> None:
    metric = summary["metric"].upper()
    print(f"feature network: {summary['feature_network']}; {summary['n_done']} cells done, "
          f"{summary['n_failed']} failed, {summary['n_pending']} pending")
    print(f"{'latent':<9} {'width':>6} {'G params':>10} {metric + ' mean':>10} {'± std':>7} {'n':>2}")
    widths = {(c["latent"], c.get("generator_parameters")): c["width"] for c in summary["cells"]
              if c["status"] == "done"}
    for latent, rows in summary["curves"].items():
        for r in rows:
            print(f"{latent:<9} {widths.get((latent, r['params']), ''):>6} {r['params']:>10,} {r['mean']:>10.4g} "
                  f"{r['std']:>7.3g} {r['n']:>2}")
    for entry in summary["c_eps"]:
        print(f"C_eps at {metric} <= {entry['eps']:g} ({entry['eps_source']}):")
        for row in entry["table"]:
            c = f"{row['c_eps']:,.0f} params" if row["reached"] else "not reached"
            auc = f"{row['auc']:.4g}" if row["auc"] is not None else "n/a"
            print(f"  {row['rank']}. {row['latent']:<9} C_eps {c:<22} AUC {auc:<8} best {row['best']:.4g}")
    for c in summary["cells"]:
        if c["status"] == "failed":
            print(f"failed cell {c['cell']}: {c['error']}")


def _cmd_datasets(a: argparse.Namespace) -> None:
    from latentforge.data.dataset import BUILTINS

    print(f"{'name':<8} {'images':>7} {'ch':>3} {'size':>5}  description / where it comes from")
    for d in BUILTINS.values():
        print(f"{d.name:<8} {d.count:>7} {d.channels:>3} {d.native_size:>5}  {d.description}; {d.where}; {d.licence}")
    print("or any folder of png/jpg/webp/bmp images (class subfolders optional), or a .npy/.npz array file")


COMMANDS = {"train": _cmd_train, "sample": _cmd_sample, "reconstruct": _cmd_reconstruct,
            "interpolate": _cmd_interpolate, "eval": _cmd_eval, "sweep": _cmd_sweep, "report": _cmd_report,
            "compare": _cmd_compare, "datasets": _cmd_datasets}


def main(argv: list[str] | None = None) -> int:
    try:
        parser = _parser()
        parser.given = list(sys.argv[1:] if argv is None else argv)
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (its one line is printed): a code, as for every command
        return int(e.code or 0)
    warnings.formatwarning = lambda msg, cat, *rest: f"warning: {msg}\n"
    try:
        return COMMANDS[args.command](args) or 0
    except LatentforgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine, not the code: a full disk, a folder that became unwritable mid-run
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        print(f"error: out of memory ({str(e).splitlines()[0][:160]}). {_memory_advice(args)}", file=sys.stderr)
        return 2


def _out_of_memory(e: BaseException) -> bool:
    """CUDA's OutOfMemoryError, the CPU allocator's "can't allocate memory", or Python's MemoryError."""
    text = str(e).lower()
    return (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError" or "out of memory" in text
            or "can't allocate memory" in text)


def _memory_advice(args: argparse.Namespace) -> str:
    if args.command == "train":
        resume = (f" Checkpoints already written are kept: continue with `latentforge train {args.model} --out "
                  f"{args.out} --resume --set train.batch_size=N`.")
        return ("Try a smaller batch (--set train.batch_size=N; halving it halves activation memory) or a smaller "
                "preset (--preset cpu or tiny)." + resume)
    if args.command in ("sample", "eval", "report"):
        return "Try fewer images at a time (--n), or --device cpu if the GPU is the one that ran out."
    return "Try a smaller job (fewer images, a smaller batch)."


if __name__ == "__main__":
    sys.exit(main())
