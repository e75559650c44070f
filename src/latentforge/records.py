"""The records a run folder's `metrics.jsonl` holds (one JSON object per line, told apart by `kind`) and the cells
of a sweep's `sweep.json`: the one place their keys are declared.

Writers (the loop, `api.summarize`, the evaluator, the sweep) build these; readers (the CLI printout, `compare`, the
HTML report, the sweep's collection) name keys through `field`, which refuses a key no record kind declares, so a
renamed key breaks at import time instead of leaving a report row silently blank. `check` guards each record
appended to a run folder. Torch-free, importable from every layer.
"""
from typing import Any, Literal, Optional, get_type_hints

# typing_extensions' TypedDict sees NotRequired on Python 3.10 too; annotations are evaluated (no `from __future__
# import annotations`) so that the required keys are known at runtime
from typing_extensions import NotRequired, TypedDict


class TrainRecord(TypedDict):
    """Every `train.log_every` steps: the task's logged scalars averaged over those steps (losses, and e.g.
    `grad_norm` when clipping is on), plus these."""

    kind: Literal["train"]
    step: int
    epoch: int
    loss: float
    img_per_s: float
    time_s: float  # training time since this session started


class DiagnosticRecord(TypedDict):
    """With every sample grid: cheap figures on where training stands (the task's `diagnose`)."""

    kind: Literal["diagnostic"]
    step: int
    sample_diversity_ratio: float  # samples' mean pixel distance over the data's
    note: NotRequired[str]  # a sentence for the person watching (e.g. "on the plateau")
    note_level: NotRequired[Literal["ok"]]  # good news; absent: a warning
    pattern_discrimination_ratio: NotRequired[float]  # DeAE: own-pattern over other-image reconstruction error
    pattern_discrimination_ratio_pixels: NotRequired[float]  # latent DeAE: the same ratio after decoding
    discrimination_space: NotRequired[str]  # latent DeAE: 'latent' (the space of pattern_discrimination_ratio)
    on_plateau: NotRequired[bool]
    recon_rms_own_pattern: NotRequired[float]
    recon_rms_vs_other_image: NotRequired[float]
    recon_rms_train: NotRequired[Optional[float]]  # autoencoders: reconstruction error of training images
    stage: NotRequired[str]  # DAE: stage1 | stage2


class SummaryRecord(TypedDict):
    """At the end of every training session: the last logged scalars, and figures that need no feature network
    (pixel RMS in [0, 1] units; the task's `summarize`)."""

    kind: Literal["summary"]
    step: int
    state: str  # finished | interrupted | time_limit | paused
    wall_s: float  # this session's training time
    loss: NotRequired[float]
    sample_nn_rms_mean: float
    sample_nn_rms_min: float
    sample_diversity_rms: float
    train_diversity_rms: float
    metric_space: str
    recon_rms_heldout: NotRequired[Optional[float]]  # autoencoders and priors: held-out reconstruction error
    recon_rms_train: NotRequired[Optional[float]]
    latent_scale: NotRequired[float]  # priors
    pattern_discrimination_ratio: NotRequired[float]  # DeAE
    pattern_discrimination_ratio_pixels: NotRequired[float]
    discrimination_space: NotRequired[str]
    recon_rms_own_pattern: NotRequired[float]
    recon_rms_vs_other_image: NotRequired[float]
    on_plateau: NotRequired[bool]
    note: NotRequired[str]
    note_level: NotRequired[Literal["ok"]]


class EvalRecord(TypedDict):
    """`latentforge eval`: samples scored in a feature network the model was not trained from, against held-out
    images (distribution figures) and the training images (memorisation). `reference_*` and `heldout_*` keys are
    the held-out images' own values, what a sample's figure is read against (`metrics/guide.py`)."""

    kind: Literal["eval"]
    step: int
    sample_seed: int
    sample_bn: Optional[str]
    model_trained_from: list[str]  # feature networks the model saw (never the judge)
    feature_network: str
    feature_network_info: NotRequired[dict[str, Any]]
    reference_split: str
    n_fake: int
    n_reference: int
    n_train: int
    fid: float
    fid_train: float
    fid_heldout_vs_train: NotRequired[float]  # the floor: held-out images against the training images
    kid: float
    kid_std: float
    precision: float
    recall: float
    density: float
    coverage: float
    is_: NotRequired[float]  # stored as "is" (a Python keyword); see `_ALIASES`
    is_std: NotRequired[float]
    is_reference: NotRequired[float]
    nn_pixel_rms_median: float
    nn_pixel_rms_p05: float
    heldout_nn_pixel_rms_median: NotRequired[float]
    nn_pixel_ratio_vs_heldout: NotRequired[float]
    nn_feature_median: float
    heldout_nn_feature_median: NotRequired[float]
    nn_feature_ratio_vs_heldout: NotRequired[float]
    near_copy_threshold_rms: float
    near_copy_fraction: float
    heldout_near_copy_fraction: NotRequired[float]
    sample_diversity: float
    reference_diversity: float
    diversity_ratio: float
    duplicate_threshold_rms: float
    sample_distinct: int
    sample_distinct_fraction: float
    sample_near_duplicate_fraction: float
    sample_exact_duplicate_fraction: float
    reference_n: int
    reference_distinct: int
    reference_distinct_fraction: float
    reference_near_duplicate_fraction: float
    reference_exact_duplicate_fraction: float
    collapse_flag: bool
    memorisation_flag: bool
    flag_reasons: list[str]
    nn_grid: NotRequired[str]
    scoring_seconds: float
    eval_seconds: float
    eval_seconds_parts: dict[str, float]


class SweepCell(TypedDict):
    """One (latent, width, seed) cell of a complexity sweep, in sweep.json."""

    cell: str
    latent: str
    width: float
    seed: int
    run_dir: str
    status: Literal["done", "failed", "pending"]
    generator_parameters: NotRequired[int]
    discriminator_parameters: NotRequired[int]
    wall_s: NotRequired[float]
    eval_s: NotRequired[Optional[float]]
    feature_network: NotRequired[str]
    latent_info: NotRequired[dict[str, Any]]
    metrics: NotRequired[dict[str, float]]
    final_losses: NotRequired[dict[str, float]]
    error: NotRequired[str]


KINDS: dict[str, type] = {"train": TrainRecord, "diagnostic": DiagnosticRecord, "summary": SummaryRecord,
                          "eval": EvalRecord, "sweep_cell": SweepCell}
_ALIASES = {"is_": "is"}


def keys(kind: str) -> tuple[frozenset[str], frozenset[str]]:
    """(required keys, all declared keys) of a record kind."""
    cls = KINDS[kind]
    hints = get_type_hints(cls)
    name = lambda k: _ALIASES.get(k, k)  # noqa: E731
    return (frozenset(name(k) for k in cls.__required_keys__), frozenset(name(k) for k in hints))


def field(kind: str, key: str) -> str:
    """`key`, after checking that records of `kind` declare it: what a reader uses to name a key."""
    if key not in keys(kind)[1]:
        raise KeyError(f"{kind} records declare no key {key!r} (latentforge/records.py)")
    return key


def check(record: dict[str, Any]) -> dict[str, Any]:
    """A record about to be written: its kind is known and its required keys are there. Returns it."""
    kind = record.get("kind")
    if kind not in KINDS or kind == "sweep_cell":
        raise ValueError(f"unknown record kind {kind!r}")
    missing = keys(kind)[0] - set(record)
    if missing:
        raise ValueError(f"a {kind} record lacks {', '.join(sorted(missing))}")
    return record
