"""Named partial configs per model. `paper` is each model's reference recipe and the base every other preset of
that model is merged onto; the CPU presets shrink widths, resolution and batch so results arrive in minutes."""
from __future__ import annotations

from typing import Any

_DEAE_CPU_TRAIN = {"batch_size": 64, "ema_every": 1, "ema_start": 50, "sample_every": 250, "checkpoint_every": 250}
_CPU_LOSS = {"pixel": "mse", "perceptual": "laplacian"}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "deae": {
        # the reference's training default: gen_masks.py clusters into 32 before train.py; sample.py draws uniformly
        "paper": {"model": {"mask_clusters": 32, "mask_sampling": "uniform"}},
        "cpu": {  # plus the plateau remedy measured in benchmarks/deae_plateau.py (issue 15): a learned constant
            # encoder input and a coarse-to-fine pattern code (32 k-means clusters x 16 sub-clusters on levels 1-2)
            "model": {"enc_widths": (32, 64, 128, 256), "latent_dim": 64, "mask_active": (1, 4, 16), "shift_range": 2,
                      "encoder_input": "constant", "mask_clusters": 32, "mask_subclusters": 16,
                      "mask_sampling": "frequency", "loss": _CPU_LOSS},
            # NHWC convolutions pay on these widths on a CPU (benchmarks/cpu_efficiency.py)
            "train": {**_DEAE_CPU_TRAIN, "memory_format": "channels_last"},
        },
        "cpu16": {  # the README's main job: digits/MNIST at 16x16, recognisable digits in minutes on 2 cores
            "data": {"resolution": 16},
            "model": {"enc_widths": (32, 64, 128), "latent_dim": 64, "mask_active": (1, 4), "shift_range": 2,
                      "mask_clusters": 0, "loss": _CPU_LOSS},
            "train": {**_DEAE_CPU_TRAIN, "sample_every": 500, "checkpoint_every": 500, "log_every": 50},
        },
        "tiny": {
            "model": {"enc_widths": (16, 32, 64, 128), "latent_dim": 32, "mask_active": (1, 2, 4), "shift_range": 0,
                      "mask_clusters": 0, "loss": _CPU_LOSS},
            "train": {"batch_size": 32, "ema_every": 1, "ema_start": 10, "sample_every": 100, "checkpoint_every": 100,
                      "grid_size": 16},
        },
    },
    # The autoencoders (joint `ae` and decoupled `dae`) share their presets: a DAE and its baseline differ only in
    # the DAE's stage knobs. `paper` is an LDM-style f=4 autoencoder at 32 px (8x8x4 latent, 64 base channels).
    **{name: {
        "paper": {"train": {"batch_size": 64, "ema_start": 100, "sample_every": 1000, "checkpoint_every": 1000}},
        "cpu": {"model": {"base_channels": 32, "loss": _CPU_LOSS},
                "train": {"batch_size": 64, "sample_every": 250, "checkpoint_every": 250, "log_every": 25}},
        "cpu16": {"data": {"resolution": 16}, "model": {"base_channels": 32, "latent_resolution": 4, "loss": _CPU_LOSS},
                  "train": {"batch_size": 64, "sample_every": 500, "checkpoint_every": 500, "log_every": 50}},
        "tiny": {"model": {"base_channels": 16, "latent_resolution": 4, "loss": _CPU_LOSS},
                 "train": {"batch_size": 32, "sample_every": 100, "checkpoint_every": 100, "grid_size": 16}},
    } for name in ("ae", "dae")},
    # The latent diffusion prior: `paper` is a small LDM-style UNet for 8x8 latents; the CPU presets shrink it.
    "prior": {
        "paper": {"train": {"steps": 20000, "batch_size": 128, "ema_decay": 0.9999, "ema_start": 500, "ema_every": 1,
                            "sample_every": 2000, "checkpoint_every": 2000}},
        "cpu": {"model": {"widths": (32, 64), "sample_steps": 25, "optim": {"lr": 1e-3}},
                "train": {"batch_size": 64, "ema_decay": 0.999, "ema_start": 100, "ema_every": 1,
                          "sample_every": 250, "checkpoint_every": 250, "log_every": 25}},
        "tiny": {"model": {"widths": (16, 32), "layers_per_block": 1, "sample_steps": 8, "optim": {"lr": 1e-3}},
                 "train": {"batch_size": 32, "ema_decay": 0.99, "ema_start": 10, "ema_every": 1,
                           "sample_every": 100, "checkpoint_every": 100, "grid_size": 16}},
    },
    "dcgan": {
        # Radford et al.: Adam 2e-4, betas (0.5, 0.999), batch 128, BN in G and D, non-saturating loss.
        "paper": {"train": {"batch_size": 128, "ema_decay": 0.999, "ema_start": 1000, "ema_every": 1,
                            "sample_every": 1000, "checkpoint_every": 1000}},
        "cpu": {"train": {"batch_size": 64, "ema_decay": 0.999, "ema_start": 200, "ema_every": 1,
                          "sample_every": 250, "checkpoint_every": 250, "log_every": 25}},
        "cpu16": {"data": {"resolution": 16},
                  "train": {"batch_size": 64, "ema_decay": 0.999, "ema_start": 200, "ema_every": 1,
                            "sample_every": 500, "checkpoint_every": 500, "log_every": 50}},
        "tiny": {"model": {"g_channels": 16, "d_channels": 16, "latent": {"dim": 16}},
                 "train": {"batch_size": 32, "ema_decay": 0.99, "ema_start": 10, "ema_every": 1,
                           "sample_every": 100, "checkpoint_every": 100, "grid_size": 16}},
    },
}
