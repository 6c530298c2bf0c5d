"""Start-up cost of the CLI: `fbtui --version` and `fbtui ls` against a bare `python -c pass`.

    .venv/bin/python bench/startup.py

Target (issue #2): `fbtui --version` under 0.3 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

LAB = Path(__file__).resolve().parent.parent


def median_seconds(cmd: list[str], repeat: int = 15) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=LAB)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    bare = median_seconds([sys.executable, "-c", "pass"])
    print(f"python -c pass              {bare * 1000:7.1f} ms   (baseline)")
    for args in (["--version"], ["ls"], ["config", "digits-mlp"]):
        s = median_seconds([sys.executable, "-m", "fbtui", *args])
        print(f"fbtui {' '.join(args):<22}{s * 1000:7.1f} ms   ({s / bare:.1f}x the baseline)")


if __name__ == "__main__":
    main()
