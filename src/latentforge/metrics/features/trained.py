"""The offline evaluation network for labelled data: a small classifier trained by latentforge on the dataset's
training split, once, then cached. (Data without labels gets a contrastive encoder: ``contrastive.py``.)

Used when the Inception weights are absent. It shares nothing with any training loss (DeAE's loss is a Laplacian
pyramid or LPIPS-AlexNet), so no model is scored by the network it was trained against. Every number it produces
carries its name and weights hash; its held-out accuracy is recorded so a reader can judge how much it sees.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentforge.data.dataset import ImageDataset
from latentforge.data.fetch import default_cache_dir
from latentforge.data.transforms import fit_to_network
from latentforge.metrics.features.base import FeatureExtractor
from latentforge.utils.checkpoint import load_checkpoint, save_checkpoint
from latentforge.utils.rng import step_generator

ARCH_VERSION = 1
INPUT_SIZE = 32


class SmallConvNet(nn.Module):
    """Four conv stages (16-32-64-128) with BN and ReLU, global average pool -> 128-d features -> logits."""

    def __init__(self, channels: int, classes: int, width: int = 16):
        super().__init__()
        layers, c = [], channels
        for i in range(4):
            w = width * 2 ** i
            layers += [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)
        self.feature_dim = c

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pool = self.body(x).mean((2, 3))
        return pool, self.head(pool)


def _prepare(images: torch.Tensor, channels: int) -> torch.Tensor:
    return fit_to_network(images, channels, INPUT_SIZE)


class TrainedFeatures(FeatureExtractor):
    def __init__(self, net: SmallConvNet, channels: int, name: str, fingerprint: str, info: dict):
        self.net, self.channels, self.name, self.fingerprint, self.info = net.eval(), channels, name, fingerprint, info

    def _forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        self.net.to(images.device)
        pool, logits = self.net(_prepare(images, self.channels))
        return pool, logits


def train_feature_net(train: ImageDataset, heldout: ImageDataset | None, steps: int = 400, batch_size: int = 128,
                      seed: int = 0, progress: bool = True) -> tuple[SmallConvNet, dict]:
    """Supervised on the class labels. Returns the net and facts about its training."""
    if not train.has_class_labels:
        raise ValueError(f"{train.name}: the classifier feature network needs class labels (use the contrastive one)")
    classes = int(train.labels.max()) + 1
    torch.manual_seed(seed)
    net = SmallConvNet(train.channels, classes)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.15)
    bs = min(batch_size, len(train))
    net.train()
    bar = tqdm(range(steps), desc="training the evaluation feature network", disable=None if progress else True)
    for step in bar:
        g = step_generator(seed, step, stream=17)
        idx = torch.randint(0, len(train), (bs,), generator=g)
        x = _prepare(train.get(idx), train.channels)
        shift = torch.randint(-2, 3, (2,), generator=g)
        x = torch.roll(x, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))  # mild translation jitter
        y = train.labels[idx]
        loss = F.cross_entropy(net(x)[1], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    net.eval()
    info = {"objective": "classes", "classes": classes, "steps": steps,
            "batch_size": bs, "seed": seed, "train_images": len(train), "final_loss": loss.item()}
    if heldout is not None and len(heldout):
        info["heldout_accuracy"] = _accuracy(net, heldout)
    return net, info


@torch.no_grad()
def _accuracy(net: SmallConvNet, ds: ImageDataset) -> float:
    correct = 0
    for s in range(0, len(ds), 500):
        idx = torch.arange(s, min(s + 500, len(ds)))
        x, y = _prepare(ds.get(idx), ds.channels), ds.labels[idx]
        correct += int((net(x)[1].argmax(1) == y).sum())
    return correct / len(ds)


def load_or_train_features(train: ImageDataset, heldout: ImageDataset | None = None, cache_dir: Path | None = None,
                           seed: int = 0, steps: int = 400, progress: bool = True) -> TrainedFeatures:
    """The cached network for this training set, training it on first use (about a minute on 2 CPU cores)."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha256(f"{ARCH_VERSION}|{train.fingerprint}|{seed}|{steps}".encode()).hexdigest()[:16]
    path = root / "featurenets" / f"{train.name}-{key}.safetensors"
    if path.is_file():
        state, info = load_checkpoint(path)
        net = SmallConvNet(train.channels, info["classes"])
        net.load_state_dict(state["net"])
    else:
        net, info = train_feature_net(train, heldout, steps=steps, seed=seed, progress=progress)
        save_checkpoint(path, {"net": net.state_dict()}, info)
    digest = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    return TrainedFeatures(net, train.channels, f"lf-classifier-{train.name}", digest.hexdigest()[:12],
                           json.loads(json.dumps(info)))
