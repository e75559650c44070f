"""TensorBoard event files beside metrics.jsonl, so users can watch training in the tool they already use
(`tensorboard --logdir runs/`). Written with tensorboardX, which needs no TensorBoard or TensorFlow install.
metrics.jsonl stays the record of truth; the event files mirror its numbers as `kind/key` scalars."""
from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

MIRRORED_KINDS = ("train", "diagnostic", "eval")


class EventLog:
    def __init__(self, folder: Path, purge_step: int | None = None):
        self.folder, self.purge_step, self._writer = Path(folder), purge_step, None

    def _open(self):
        if self._writer is None:
            from tensorboardX import SummaryWriter

            # purge_step: a resumed run's events past its checkpoint are hidden, as metrics.jsonl is truncated.
            # The suffix keeps two sessions that start within one second (the name has a 1-s timestamp) apart.
            self._writer = SummaryWriter(str(self.folder), purge_step=self.purge_step, flush_secs=10,
                                         filename_suffix=f".{uuid.uuid4().hex[:8]}")
        return self._writer

    def write(self, record: dict[str, Any]) -> None:
        kind, step = record.get("kind"), record.get("step")
        if kind not in MIRRORED_KINDS or not isinstance(step, int):
            return
        writer = self._open()
        for key, value in record.items():
            if key not in ("kind", "step") and isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(value):
                writer.add_scalar(f"{kind}/{key}", float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
