"""What every benchmark's JSON starts with: its name, the date, the machine and its load before and after (these
machines are shared, so an absolute time means little without the load it was measured under)."""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any


def write_record(name: str, out: Path, loadavg_before: tuple[float, float, float], machine: str = "",
                 device: str = "CPU only", **fields: Any) -> None:
    record = {"benchmark": name, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "machine": f"{os.cpu_count()} cores, {device}{', ' + machine if machine else ''}",
              "loadavg_before": loadavg_before, "loadavg_after": os.getloadavg(), **fields}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {out}")
