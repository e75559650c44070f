"""SimCLR (Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations"), small and
torch-only (no torchvision: the public SimCLR libraries all need it, which does not import beside a CPU torch here).

Two uses:

* **SSL latents for GANs** (Hu et al. 2023): the features of a self-supervised encoder trained on the
  dataset's training split are the "data-dependent latent" a generator is conditioned on.
* **The evaluation feature network for unlabelled data** (``metrics/features/contrastive.py``), with another
  architecture and seed than any SSL latent the scored model was trained from.

A model is never scored by the network it was trained against, so the architecture is a parameter
(``"resnet-s"``, ``"convnet"``) as well as the seed: the latent encoder and the scoring encoder can differ in both,
and every encoder carries ``name@fingerprint`` so each number says which network produced it.

The recipe follows the paper's CIFAR-10 setting, shrunk for CPUs: two augmented views per image (random resized
crop, horizontal flip, colour jitter, random grayscale; no blur, as in the paper's CIFAR runs), an encoder whose
pooled output is the representation, an MLP projection head that is discarded after training, and the NT-Xent
loss over the 2B views of a batch. Adam(W) with linear warm-up and cosine decay replaces LARS, which only pays off
at batch sizes of thousands.

Every step's randomness (which images, which augmentations) comes from ``step_generator(seed, step)``, so training
is a pure function of (data, arch, steps, seed, batch size): that tuple keys the on-disk cache.
"""
from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from latentforge.data.dataset import ImageDataset
from latentforge.data.fetch import default_cache_dir
from latentforge.data.transforms import fit_to_network
from latentforge.errors import DataError
from latentforge.utils.checkpoint import load_checkpoint, save_checkpoint
from latentforge.utils.rng import step_generator

# bump an arch's version when its network, the augmentations or the recipe change: it invalidates cached encoders
ARCH_VERSIONS = {"resnet-s": 1, "convnet": 2}
INPUT_SIZE = 32  # every image is resized to this inside the net, so one encoder serves 16..64 px data
ARCHS = tuple(ARCH_VERSIONS)
PROJECTION_DIM = 128
# weak: view retrieval below WEAK_VS_PIXELS x what raw pixels achieve on the same views (see _knn_view_accuracy)
WEAK_VS_PIXELS = 1.5

_STREAM_BATCH = 31  # step_generator streams: batches and the evaluation draws use separate ones
_STREAM_EVAL = 37
_STREAM_PROBE = 41

TRAIN_CALLS = 0  # how many times train_simclr ran in this process (lets tests prove a cache hit trained nothing)


# ----------------------------------------------------------------------------------------------- augmentations

def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luminance of images in [0, 1] (ITU-R 601 weights, as torchvision's rgb_to_grayscale)."""
    if x.shape[1] == 1:
        return x
    w = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Hue shift as a rotation of the chroma plane in YIQ space: one batched 3x3 matrix per image, no HSV round
    trip (torchvision's HSV version is exact but branchy; this is the standard linear approximation)."""
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.zeros(len(x), 3, 3, dtype=x.dtype, device=x.device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
    m = from_yiq @ rot @ to_yiq  # (B, 3, 3)
    return torch.einsum("bij,bjhw->bihw", m, x)


def augment(x: torch.Tensor, g: torch.Generator, *, crop_scale: tuple[float, float] = (0.35, 1.0),
            jitter: float = 0.4, gray_p: float = 0.2, flip: bool = True) -> torch.Tensor:
    """One random SimCLR view of each image; images in [-1, 1], (B, C, H, W), C in {1, 3}; same shape out.

    SimCLR's finding is that the *composition* of cropping and colour distortion is what makes the task hard
    enough to learn semantics (crop alone can be solved by matching colour histograms). So, per image:

    * random resized crop: area fraction ~ U(crop_scale), aspect ratio log-uniform in [3/4, 4/3], position uniform,
      resampled to the input size with one batched ``affine_grid`` + ``grid_sample`` (bilinear); the paper uses
      (0.08, 1) on ImageNet, we default to 0.35 because 16-32 px images lose their content below that;
    * horizontal flip with probability 1/2 (folded into the same affine map);
    * colour jitter with probability 0.8 (the paper's): brightness, contrast and saturation factors in
      [1 - jitter, 1 + jitter] and a hue rotation of up to ±jitter/4 turns (torchvision's ColorJitter(0.8s, 0.8s,
      0.8s, 0.2s) with s = 0.5 gives exactly 0.4/0.1); saturation and hue only when C = 3; fixed order;
    * grayscale with probability gray_p (only when C = 3: a 1-channel image already is).

    All random numbers are drawn from ``g`` (on the CPU, then moved), in an order that does not depend on the data,
    so the result is a pure function of (x, g's seed) and the same on any device up to float rounding.
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"augment expects (B, C, H, W) with C in {{1, 3}}, got {tuple(x.shape)}")
    b, c, h, w = x.shape
    dev, dt = x.device, x.dtype if x.is_floating_point() else torch.float32
    u = torch.rand(b, 11, generator=g)  # all per-image draws at once: a fixed order, whatever C is

    # random resized crop (+ flip) as one affine map from output to input coordinates ([-1, 1] units)
    lo, hi = crop_scale
    area = lo + (hi - lo) * u[:, 0]
    log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * u[:, 1]
    ratio = torch.exp(log_r)
    sx = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width as a fraction of the image width
    sy = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - sx) * (2 * u[:, 2] - 1)  # centre, keeping the crop inside the image
    cy = (1 - sy) * (2 * u[:, 3] - 1)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(b)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = sx * sign, cx
    theta[:, 1, 1], theta[:, 1, 2] = sy, cy
    grid = F.affine_grid(theta.to(dev, dt), [b, c, h, w], align_corners=False)
    y = F.grid_sample(x.to(dt), grid, mode="bilinear", padding_mode="border", align_corners=False)

    # colour, in [0, 1]
    y = (y + 1) * 0.5
    on = (u[:, 5] < 0.8).to(dev, dt).view(b, 1, 1, 1)

    def factor(col: int) -> torch.Tensor:
        f = 1 + jitter * (2 * u[:, col] - 1)
        return (on * f.to(dev, dt).view(b, 1, 1, 1)) + (1 - on)  # 1 where jitter is off

    y = (y * factor(6)).clamp(0, 1)  # brightness
    mean = _luma(y).mean((1, 2, 3), keepdim=True)
    y = ((y - mean) * factor(7) + mean).clamp(0, 1)  # contrast
    if c == 3:
        gray = _luma(y)
        y = ((y - gray) * factor(8) + gray).clamp(0, 1)  # saturation
        angle = (2 * math.pi * jitter / 4) * (2 * u[:, 9] - 1) * (u[:, 5] < 0.8).float()
        y = _rotate_hue(y, angle.to(dev, dt)).clamp(0, 1)
        to_gray = (u[:, 10] < gray_p).to(dev, dt).view(b, 1, 1, 1)
        y = to_gray * _luma(y).expand_as(y) + (1 - to_gray) * y
    return (y.clamp(0, 1) * 2 - 1).contiguous()


# --------------------------------------------------------------------------------------------------------- loss

def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """NT-Xent (normalised temperature-scaled cross entropy), mean over all 2B views.

    z1[i] and z2[i] are projections of two views of image i. Each of the 2B views must pick its partner out of the
    other 2B - 1 views by cosine similarity / temperature (softmax over them; a view is never its own candidate).
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent expects two (B, D) tensors of one shape, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.t()) / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(sim, target)


# ------------------------------------------------------------------------------------------------------ networks

class _Block(nn.Module):
    """ResNet basic block (two 3x3 conv-BN, identity or 1x1-conv shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(y)) + self.short(x), inplace=True)


def _resnet_s(channels: int) -> tuple[nn.Module, int]:
    """Small ResNet: a stride-2 3x3 stem (32 ch, 32 -> 16 px), then one basic block per stage at widths 32-64-128
    and 16-8-4 px. The stride-2 stem keeps every activation map at <= 16 px, so CPU training costs what a 16 px net
    costs, while the 32 px input still lets 64 px images keep more detail than resizing them to 16 would."""
    widths = (32, 64, 128)
    layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]),
                               nn.ReLU(inplace=True)]
    cin = widths[0]
    for i, w in enumerate(widths):
        layers.append(_Block(cin, w, stride=1 if i == 0 else 2))
        cin = w
    return nn.Sequential(*layers), cin


def _convnet(channels: int) -> tuple[nn.Module, int]:
    """Plain VGG-style stack without shortcuts or a stem: two 3x3 convs per stage (the first with stride 2) at
    widths 24-48-96 and 16-8-4 px. Different from resnet-s in topology, widths and depth, so the two make
    independent feature spaces, and about as cheap to train on a CPU (BatchNorm: GroupNorm cost 3x more time)."""
    layers: list[nn.Module] = []
    cin = channels
    for w in (24, 48, 96):
        layers += [nn.Conv2d(cin, w, 3, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                   nn.Conv2d(w, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        cin = w
    return nn.Sequential(*layers), cin


def _prepare(images: torch.Tensor, channels: int) -> torch.Tensor:
    return fit_to_network(images, channels, INPUT_SIZE)


class SimCLRNet(nn.Module):
    """Encoder backbone -> global average pool -> feature (the representation we keep), plus the projection head
    (Linear-BN-ReLU-Linear to 128-d, as in the paper) that the loss sees. The head is discarded after training: the
    paper shows the layer *before* it holds more information, because the head learns invariance to the
    augmentations (e.g. colour) that downstream uses may need."""

    def __init__(self, channels: int, arch: str = "resnet-s"):
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown SimCLR arch {arch!r}; choose one of {', '.join(ARCHS)}")
        if channels not in (1, 3):
            raise ValueError(f"SimCLRNet needs 1 or 3 channels, got {channels}")
        self.channels, self.arch = channels, arch
        self.body, self.feature_dim = _resnet_s(channels) if arch == "resnet-s" else _convnet(channels)
        hidden = 2 * self.feature_dim
        self.head = nn.Sequential(nn.Linear(self.feature_dim, hidden, bias=False), nn.BatchNorm1d(hidden),
                                  nn.ReLU(inplace=True), nn.Linear(hidden, PROJECTION_DIM))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1], any C in {1, 3} and size -> (B, feature_dim)."""
        return self.body(_prepare(x, self.channels)).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _fingerprint(net: nn.Module) -> str:
    digest = hashlib.sha256()
    for k, v in sorted(net.state_dict().items()):
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


@dataclass
class SimCLREncoder:
    """A trained, frozen SimCLR encoder: what a GAN's SSL latents or an evaluation come from."""

    net: SimCLRNet
    channels: int
    name: str
    fingerprint: str  # first 12 hex of the sha256 of the weights
    info: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How tables and latent files name this encoder: never mix two labels in one comparison."""
        return f"{self.name}@{self.fingerprint}"

    @torch.no_grad()
    def encode(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Images in [-1, 1], (N, C, H, W) -> (N, feature_dim) float32 on the CPU (eval mode, no grad)."""
        self.net.eval()
        dev = next(self.net.parameters()).device
        out = [self.net.features(images[s:s + batch_size].to(dev).float()).float().cpu()
               for s in range(0, len(images), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, self.net.feature_dim)


# ------------------------------------------------------------------------------------------------------ training

@torch.no_grad()
def _encode(net: SimCLRNet, ds: ImageDataset, idx: torch.Tensor, device: torch.device,
            batch_size: int = 512) -> torch.Tensor:
    out = [net.features(ds.get(idx[s:s + batch_size]).to(device)).cpu() for s in range(0, len(idx), batch_size)]
    return torch.cat(out)


def _linear_probe(net: SimCLRNet, train: ImageDataset, heldout: ImageDataset | None, seed: int,
                  device: torch.device, limit: int = 10000) -> tuple[float | None, str]:
    """Accuracy of a logistic regression on frozen (standardised) features: the paper's linear evaluation.
    Fit on the train split, scored on held-out labels; without usable held-out labels, an 80/20 split of train."""
    if not train.has_class_labels:
        return None, "no class labels in the training split"
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    g = step_generator(seed, 0, _STREAM_PROBE)
    perm = torch.randperm(len(train), generator=g)[:limit]
    if heldout is not None and heldout.has_class_labels:
        tr, where = perm, f"held-out split ({len(heldout)} images)"
        x_te = _encode(net, heldout, torch.arange(min(len(heldout), limit)), device).numpy()
        y_te = heldout.labels[:limit].numpy()
    else:
        cut = int(0.8 * len(perm))
        tr, te, where = perm[:cut], perm[cut:], f"20% of the train split ({len(perm) - cut} images)"
        x_te, y_te = _encode(net, train, te, device).numpy(), train.labels[te].numpy()
    x_tr, y_tr = _encode(net, train, tr, device).numpy(), train.labels[tr].numpy()
    if len(set(y_tr.tolist())) < 2 or len(y_te) == 0:
        return None, "too few labelled images for a probe"
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # One BLAS thread: the problem is tiny, and OpenBLAS threads spinning against torch's OpenMP pool make this
    # fit many times slower.
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs may stop at max_iter on separable features: the score stands
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_tr, y_tr)
        return float(clf.score(x_te, y_te)), where


@torch.no_grad()
def _knn_view_accuracy(net: SimCLRNet, ds: ImageDataset, seed: int, device: torch.device,
                       n: int = 500) -> tuple[float, float]:
    """Label-free check that the encoder learned its task: for n images, make two augmented views; a hit is when
    the nearest (cosine) second view to an image's first view is its own. Chance is 1/n. It works on unlabelled
    folders too, which is why it (not the probe) decides the "weak" flag.

    Returns (encoder accuracy, raw-pixel accuracy on the same views: cosine of the mean-centred flattened images).
    How hard the task is depends on the data (yellow emoji faces crop alike; digits do not), so the pixel figure is
    the yardstick: an encoder that does not clearly beat raw pixels has learned little worth measuring with."""
    g = step_generator(seed, 0, _STREAM_EVAL)
    idx = torch.randperm(len(ds), generator=g)[:n]
    x = ds.get(idx).to(device)
    v1, v2 = augment(x, g), augment(x, g)
    target = torch.arange(len(idx))

    def hits(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        return float(((a @ b.t()).argmax(1).cpu() == target).float().mean())

    def centred(v: torch.Tensor) -> torch.Tensor:
        flat = v.flatten(1)
        return flat - flat.mean(1, keepdim=True)

    return hits(net.features(v1), net.features(v2)), hits(centred(v1), centred(v2))


def train_simclr(train: ImageDataset, *, arch: str = "resnet-s", steps: int = 600, batch_size: int = 256,
                 lr: float = 1e-3, temperature: float = 0.2, seed: int = 0, progress: bool = True,
                 heldout: ImageDataset | None = None,
                 device: str | torch.device = "cpu") -> tuple[SimCLRNet, dict]:
    """Train a SimCLR encoder on ``train`` and return it (eval mode, on the CPU) with facts about the run.

    AdamW (weight decay 1e-4 on conv/linear weights only), 5 % linear warm-up then cosine decay to 0. Each step
    draws ``batch_size`` distinct images (without replacement, so no image is its own negative) and two views of
    each from ``step_generator(seed, step)``; both views go through the net as one batch, so BatchNorm statistics
    span all 2B views, as the paper's global BN does across devices.

    ``info`` records the recipe, the loss at the start and end (means of the first/last 20 steps), wall time,
    the linear-probe accuracy (labels permitting), the view-retrieval accuracy, and ``weak``/``weak_reason``.
    """
    global TRAIN_CALLS
    TRAIN_CALLS += 1
    if len(train) < 2:
        raise DataError("SimCLR needs at least 2 training images (the other images are the negatives)")
    dev = torch.device(device)
    bs = min(batch_size, len(train))
    torch.manual_seed(seed)
    net = SimCLRNet(train.channels, arch).to(dev)
    decay = [p for n, p in net.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in net.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr)
    warm = max(1, round(0.05 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    losses: list[float] = []
    net.train()
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=f"training SimCLR ({arch})", disable=None if progress else True)
    for step in bar:
        g = step_generator(seed, step, _STREAM_BATCH)
        idx = torch.randperm(len(train), generator=g)[:bs]
        x = train.get(idx).to(dev)
        views = torch.cat([augment(x, g), augment(x, g)])
        z = net(views)
        loss = nt_xent(z[:bs], z[bs:], temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - t0
    net.eval()
    k = min(20, len(losses))
    info: dict = {"method": "simclr", "arch": arch, "arch_version": ARCH_VERSIONS[arch], "channels": train.channels,
                  "input_size": INPUT_SIZE, "feature_dim": net.feature_dim, "steps": steps, "batch_size": bs,
                  "seed": seed, "lr": lr, "temperature": temperature, "train_images": len(train),
                  "train_fingerprint": train.fingerprint,
                  "loss_start": sum(losses[:k]) / k if k else None,
                  "loss_end": sum(losses[-k:]) / k if k else None,
                  "loss_chance": math.log(2 * bs - 1),  # NT-Xent of a net that cannot tell the views apart
                  "seconds": round(seconds, 2), "steps_per_second": round(steps / seconds, 3) if seconds else None,
                  "device": str(dev)}
    probe, where = _linear_probe(net, train, heldout, seed, dev)
    info["linear_probe_accuracy"], info["linear_probe_on"] = probe, where
    eval_ds = heldout if heldout is not None and len(heldout) >= 2 else train
    info["knn_view_accuracy"], info["knn_view_accuracy_pixels"] = _knn_view_accuracy(net, eval_ds, seed, dev)
    info["knn_view_images"] = min(500, len(eval_ds))
    info["knn_view_on"] = "heldout" if eval_ds is heldout else "train"
    info["weak"] = info["knn_view_accuracy"] < WEAK_VS_PIXELS * info["knn_view_accuracy_pixels"]
    if info["weak"]:
        info["weak_reason"] = (f"view-retrieval accuracy {info['knn_view_accuracy']:.2f} on "
                               f"{info['knn_view_images']} images is under {WEAK_VS_PIXELS}x raw pixels' "
                               f"{info['knn_view_accuracy_pixels']:.2f}: the encoder barely tells images apart; "
                               f"train longer (steps={steps}) or on more images")
        warnings.warn(f"SimCLR encoder looks weak: {info['weak_reason']}", stacklevel=2)
    return net.cpu(), info


def load_or_train_simclr(train: ImageDataset, *, heldout: ImageDataset | None = None, arch: str = "resnet-s",
                         steps: int = 600, seed: int = 0, cache_dir: Path | None = None, progress: bool = True,
                         batch_size: int = 256, device: str | torch.device = "cpu") -> SimCLREncoder:
    """The cached SimCLR encoder for this training set and recipe, training it on first use.

    Cached at ``(cache_dir or default_cache_dir()) / "simclr" / f"{train.name}-{key}.safetensors"`` where ``key``
    hashes (the arch's version, train.fingerprint, arch, steps, seed, batch_size): everything the weights depend on
    (``heldout`` and ``device`` only affect the recorded checks / float rounding). On a hit nothing is trained
    and ``info["cached"]`` is True.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown SimCLR arch {arch!r}; choose one of {', '.join(ARCHS)}")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha256(json.dumps([ARCH_VERSIONS[arch], train.fingerprint, arch, steps, seed, batch_size]).encode())
    path = root / "simclr" / f"{train.name}-{key.hexdigest()[:16]}.safetensors"
    if path.is_file():
        state, info = load_checkpoint(path)
        net = SimCLRNet(info["channels"], info["arch"])
        net.load_state_dict(state["net"])
        info["cached"] = True
    else:
        net, info = train_simclr(train, arch=arch, steps=steps, batch_size=batch_size, seed=seed, progress=progress,
                                 heldout=heldout, device=device)
        info = json.loads(json.dumps(info))  # plain JSON types, as they come back from the checkpoint
        save_checkpoint(path, {"net": net.state_dict()}, info)
        info["cached"] = False
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return SimCLREncoder(net, info["channels"], f"lf-simclr-{arch}-{train.name}", _fingerprint(net), info)
