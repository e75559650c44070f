"""What every benchmark's JSON starts with: its name, the date, the machine and its load before and after (these
machines are shared, so an absolute time means little without the load it was measured under); and the printed
table of its summary rows."""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any, Callable


def cpu_description() -> str:
    """The CPU's model name and whether it computes bf16 natively: speeds differ between machines of one kind."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    native = sorted(flags & {"avx512_bf16", "amx_bf16"})
    simd = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return f"{model} ({simd}, bf16: {', '.join(native) if native else 'not native'})"


def write_record(name: str, out: Path, loadavg_before: tuple[float, float, float], machine: str = "",
                 device: str = "CPU only", **fields: Any) -> None:
    record = {"benchmark": name, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "machine": f"{os.cpu_count()} cores, {device}{', ' + machine if machine else ''}",
              "cpu": cpu_description(),
              "loadavg_before": loadavg_before, "loadavg_after": os.getloadavg(), **fields}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    print(f"wrote {out}")


def cell(row: dict[str, Any], key: str, fmt: str) -> str:
    """row[key] formatted, or '-' where the figure is missing."""
    return format(row[key], fmt) if row.get(key) is not None else "-"


def print_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, Callable[[dict[str, Any]], str]]],
                flag: Callable[[dict[str, Any]], str] = lambda r: "", footer: str = "") -> None:
    """One line per row; `columns`: (header, alignment and width as in a format spec, e.g. '<6' or '>13', the
    row's text); `flag`: a word appended to a row (MEMORISES); `footer`: what the columns mean."""
    head = " ".join(format(h, w) for h, w, _ in columns)
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(" ".join(format(text(r), w) for _, w, text in columns) + flag(r))
    if rows and footer:
        print(footer)
