"""Runs fuzz cases in this process, each in a fresh copy of the example lab, under a time limit
(SIGALRM) while the parent caps this process's memory (RLIMIT_AS). Prints one JSON line per case.

    python -m tests.fuzz.worker --seed S --first I --count N     (what tests/test_fuzz.py runs)
    python -m tests.fuzz.worker --seed S --only project-12      (replay one case, output shown)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.fuzz.generator import Case, generate
from tests.labs import copy_lab

CASE_SECONDS = 10


class Hang(BaseException):  # a BaseException: fbtui's own `except Exception` must not swallow it
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hang


def run_case(case: Case, template: Path, work: Path) -> dict[str, Any]:
    from fbtui.cli import main

    lab = work / case.name
    shutil.copytree(template, lab)
    for rel, data in case.files.items():
        (lab / rel).parent.mkdir(parents=True, exist_ok=True)
        (lab / rel).write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    outcome = "ok"
    cwd = os.getcwd()
    signal.alarm(CASE_SECONDS)
    try:
        os.chdir(lab)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main(list(case.argv))
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 2
    except Hang:
        outcome, rc = "hang", -1
    except BaseException as e:  # escaped main(): what a user would see as a traceback
        outcome, rc = f"escaped {type(e).__name__}: {e}"[:300], -1
    finally:
        signal.alarm(0)
        os.chdir(cwd)
    text = out.getvalue() + err.getvalue()
    result = {"name": case.name, "argv": case.argv, "rc": rc, "outcome": outcome,
              "seconds": round(time.perf_counter() - started, 3),
              "traceback": "Traceback (most recent call last)" in text,
              "wrote_store": (lab / ".fb").exists(),
              "stderr": err.getvalue()[-600:]}
    shutil.rmtree(lab, ignore_errors=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument("--first", type=int, default=0)
    p.add_argument("--count", type=int, default=10**9)
    p.add_argument("--only")
    args = p.parse_args()
    cases = generate(args.seed)
    cases = [c for c in cases if c.name == args.only] if args.only else cases[args.first:args.first + args.count]
    signal.signal(signal.SIGALRM, _alarm)
    os.environ.pop("FB_LAB", None)
    with tempfile.TemporaryDirectory(prefix="fb-fuzz-") as tmp:
        template = copy_lab(Path(tmp) / "template")
        for case in cases:
            result = run_case(case, template, Path(tmp))
            if args.only:
                print(json.dumps(result, indent=1))
            else:
                print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
