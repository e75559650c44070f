"""Evaluate generated images against a dataset: FID, KID, IS, precision/recall/density/coverage and memorisation,
all in one named feature space, with the dataset's reference features cached by (data, network, preprocessing).

Rules (docs/evaluation.md): the feature network is named with its weights hash in every record; distribution metrics are
computed against the held-out split when the dataset has one (train otherwise, and the record says so); memorisation
is measured against the training split. Collapse and duplication are measured in pixels (`diversity.py`), so no
feature space can hide them, and every record carries the `collapse` / `memorisation` flags with their reasons."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from latentforge.data.dataset import ImageDataset
from latentforge.data.fetch import default_cache_dir
from latentforge.errors import ConfigError
from latentforge.metrics.features.base import FeatureExtractor, Features
from latentforge.metrics.diversity import diversity_report, flags
from latentforge.metrics.memorisation import memorisation_report, nn_grid
from latentforge.metrics.scores import fid_from_features, inception_score, kid, prdc
from latentforge.utils.io import save_npz_atomic

FeatureChoice = Literal["auto", "effnet", "inception", "trained", "classifier", "simclr"]
FEATURE_CHOICES: tuple[str, ...] = get_args(FeatureChoice)
PREPROCESS_VERSION = 1


def resolve_features(choice: FeatureChoice, train: ImageDataset, heldout: ImageDataset | None,
                     progress: bool = True, inception_path: str | None = None, trained_steps: int | None = None,
                     avoid: tuple[str, ...] = ()) -> FeatureExtractor:
    """Which network scores a model.

    auto: the standard Inception network when its weights are on disk (the one published FIDs use), else `effnet`.
    effnet: EfficientNet-Lite0 trained on ImageNet, shipped by a dependency, so the same network on every machine.
    trained: a network latentforge trains on the training split: a classifier when every image has a class label,
    else a SimCLR encoder (`simclr`) of an architecture not in `avoid` (the SimCLR nets the model was trained from).
    trained_steps: training steps of that network (None: its default)."""
    from latentforge.metrics.features.contrastive import EVAL_STEPS, load_or_train_contrastive
    from latentforge.metrics.features.effnet import load_effnet
    from latentforge.metrics.features.inception import inception_available, load_inception
    from latentforge.metrics.features.trained import load_or_train_features

    if choice not in FEATURE_CHOICES:
        raise ConfigError(f"unknown feature network {choice!r}: use {', '.join(FEATURE_CHOICES)}")
    if choice == "inception" or (choice == "auto" and inception_available(inception_path)):
        return load_inception(inception_path)
    if choice in ("auto", "effnet"):
        return load_effnet()
    if choice == "classifier" or (choice == "trained" and train.has_class_labels):
        if not train.has_class_labels:
            raise ConfigError(f"{train.name} has no class labels for a classifier: use --features simclr")
        return load_or_train_features(train, heldout, steps=trained_steps or 400, progress=progress)
    return load_or_train_contrastive(train, heldout, steps=trained_steps or EVAL_STEPS, avoid=avoid,
                                     progress=progress)


def dataset_features(ds: ImageDataset, extractor: FeatureExtractor, cache_dir: Path | None = None) -> Features:
    """Features of every image in `ds`, computed once per (dataset fingerprint, network, preprocessing)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha256(f"{ds.fingerprint}|{extractor.label}|{PREPROCESS_VERSION}".encode()).hexdigest()[:20]
    path = root / "reference_features" / f"{ds.name}-{ds.split}-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return Features(z["pool"], z["logits"] if "logits" in z.files else None)
    feats = extractor.extract(ds.get(torch.arange(len(ds))))
    arrays = {"pool": feats.pool} | ({"logits": feats.logits} if feats.logits is not None else {})
    save_npz_atomic(path, **arrays)
    return feats


def evaluate(fake: torch.Tensor, train: ImageDataset, heldout: ImageDataset | None, extractor: FeatureExtractor,
             *, kid_subsets: int = 100, kid_subset_size: int = 1000, k: int = 5, near_copy_rms: float = 0.03,
             grid_path: Path | None = None, seed: int = 0, cache_dir: Path | None = None) -> dict:
    """All metrics for `fake` (float images in [-1, 1] at the dataset's resolution and channels)."""
    if fake.shape[1:] != train.images.shape[1:]:
        raise ConfigError(f"samples have shape {tuple(fake.shape[1:])} but the dataset has "
                          f"{tuple(train.images.shape[1:])}")
    t0 = time.perf_counter()
    ref = heldout if heldout is not None and len(heldout) >= 2 else train
    f_fake = extractor.extract(fake)
    f_train = dataset_features(train, extractor, cache_dir)
    f_ref = dataset_features(ref, extractor, cache_dir) if ref is not train else f_train

    record: dict = {
        "feature_network": extractor.label,
        "reference_split": ref.split,
        "n_fake": len(fake), "n_reference": len(ref), "n_train": len(train),
        "fid": fid_from_features(f_ref.pool, f_fake.pool),
        "fid_train": fid_from_features(f_train.pool, f_fake.pool),
    }
    if ref is not train:  # how far the held-out set itself is from train: the floor any model is compared with
        record["fid_heldout_vs_train"] = fid_from_features(f_train.pool, f_ref.pool)
    record["kid"], record["kid_std"] = kid(f_ref.pool, f_fake.pool, kid_subsets, kid_subset_size, seed)
    record.update(prdc(f_ref.pool, f_fake.pool, k=k))
    if f_fake.logits is not None:
        record["is"], record["is_std"] = inception_score(f_fake.logits, splits=min(10, max(1, len(fake) // 100)))
        record["is_reference"], _ = inception_score(f_ref.logits, splits=min(10, max(1, len(ref) // 100)))
    train_images = train.get(torch.arange(len(train)))
    held_images = ref.get(torch.arange(len(ref))) if ref is not train else None
    mem, nn_idx = memorisation_report(fake, train_images, held_images, f_fake.pool, f_train.pool,
                                      f_ref.pool if ref is not train else None, near_copy_rms)
    record.update(mem)
    record.update(diversity_report(fake, held_images if held_images is not None else train_images, near_copy_rms))
    record.update(flags(record))
    if grid_path is not None:
        from latentforge.utils.images import save_grid

        save_grid(nn_grid(fake, train_images, nn_idx), grid_path, nrow=nn_idx.shape[1] + 1)
        record["nn_grid"] = str(grid_path)
    if hasattr(extractor, "info"):
        record["feature_network_info"] = extractor.info
    record["scoring_seconds"] = round(time.perf_counter() - t0, 2)  # the callers time the whole evaluation
    return {k: (float(v) if isinstance(v, (np.floating, np.integer)) else v) for k, v in record.items()}
