"""The evaluation feature network for data without labels: a SimCLR encoder trained on the training split.

Why contrastive: the previous label-free choice, rotation prediction, saw little beyond orientation (a user's emoji
folder: 75 % held-out accuracy, and one repeated blob scored precision 1.00, density 1.9 and a feature NN ratio
that read as memorisation). A contrastive encoder is trained to tell every image apart from every other, which is
what FID, KID, recall and coverage need. No feature space makes precision safe against collapse (one outlying real
image's k-NN ball can swallow a repeated blob), which is why collapse is measured in pixels (``diversity.py``).
Its quality is recorded as the retrieval accuracy of augmented views on held-out images, with a warning when weak.

The rule (docs/evaluation.md): a model is never scored in the space it was trained from. The GAN study's SSL latents come from the same
SimCLR implementation (``models/simclr.py``), so this encoder uses another architecture than any SimCLR network
the model saw (``avoid``) and its own seed; the record names both in ``feature_network`` and its info.
"""
from __future__ import annotations

import torch

from latentforge.data.dataset import ImageDataset
from latentforge.errors import ConfigError
from latentforge.metrics.features.base import FeatureExtractor
from latentforge.models.simclr import ARCHS, SimCLREncoder, load_or_train_simclr

EVAL_ARCH = "convnet"  # the SSL latents default to resnet-s
EVAL_SEED = 1_000_003  # never a latent encoder's seed by accident
EVAL_STEPS = 500
EVAL_BATCH = 128


class ContrastiveFeatures(FeatureExtractor):
    """A frozen SimCLR encoder as a FeatureExtractor: pooled backbone features, no class logits (so no IS)."""

    def __init__(self, encoder: SimCLREncoder):
        self.encoder = encoder
        self.name, self.fingerprint, self.info = encoder.name, encoder.fingerprint, encoder.info

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.encoder.net.to(images.device).eval()
        return self.encoder.net.features(images), None


def load_or_train_contrastive(train: ImageDataset, heldout: ImageDataset | None = None, *, steps: int = EVAL_STEPS,
                              avoid: tuple[str, ...] = (), progress: bool = True,
                              cache_dir=None) -> ContrastiveFeatures:
    """The cached evaluation encoder for this training set (trained on first use, progress bar included).

    avoid: SimCLR architectures the scored model was trained from; the evaluator picks another one."""
    arch = EVAL_ARCH if EVAL_ARCH not in avoid else next((a for a in ARCHS if a not in avoid), None)
    if arch is None:
        raise ConfigError(f"no SimCLR architecture is left to evaluate with: the model saw {', '.join(avoid)}")
    enc = load_or_train_simclr(train, heldout=heldout, arch=arch, steps=steps, seed=EVAL_SEED,
                               batch_size=EVAL_BATCH, progress=progress, cache_dir=cache_dir)
    return ContrastiveFeatures(enc)
