"""The fuzz suite (#12, part 9): a seeded generator of malformed project.yaml, lab.yaml,
environment.yaml, `-o` values and CLI arguments (tests/fuzz/generator.py), each case run through
the real CLI entry point with a time limit, in a worker process with a memory cap.

Every case must end in a clear refusal or a success: no traceback, no unexpected error, no hang,
no exit code other than 0, 1 or 2, and no store written by a command that refused its input.
A failure names the case; `python -m tests.fuzz.worker --only NAME` replays it.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from typing import Any

import pytest

from tests.fuzz.generator import generate
from tests.labs import REPO

MEMORY_CAP = 1536 * 2**20  # address space of the worker: a blow-up ends in MemoryError, not a swapping host
SEED = 20261127
CHUNKS = 3


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _problems(r: dict[str, Any]) -> list[str]:
    found = []
    if r["outcome"] != "ok":
        found.append(r["outcome"])
    if r["traceback"]:
        found.append("printed a traceback")
    if "unexpected " in r["stderr"] and "please report it" in r["stderr"]:
        found.append("an unexpected error: " + r["stderr"].strip().splitlines()[0][:200])
    if r["rc"] not in (0, 1, 2):
        found.append(f"exit code {r['rc']}")
    if r["rc"] != 0 and r["wrote_store"]:
        found.append("refused, but wrote the store")
    if r["rc"] == 1 and r["stderr"].strip():
        lines = r["stderr"].strip().splitlines()
        if len(lines) > 3 or not lines[0].startswith("fbtui: "):
            found.append(f"not a one-line error: {r['stderr'][:200]!r}")
    if "MemoryError" in r["stderr"]:
        found.append("ran out of memory")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_malformed_input_never_crashes_hangs_or_writes(chunk: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    total = len(generate(SEED))
    assert total >= 200
    size = -(-total // CHUNKS)
    env = {**os.environ, "FB_STATE_DIR": str(tmp_path / "state")}
    env.pop("FB_LAB", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.worker", "--seed", str(SEED), "--first", str(chunk * size),
         "--count", str(size)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, preexec_fn=_cap_memory,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == min(size, total - chunk * size), proc.stderr[-2000:]
    failures = {f"{r['name']} {r['argv']}": p for r in results if (p := _problems(r))}
    assert not failures, "\n".join(f"{k}: {v}" for k, v in failures.items())
    # the cases really are malformed: most are refused (the generator did not go soft)
    refused = sum(r["rc"] != 0 for r in results)
    assert refused >= len(results) * 0.6, f"only {refused} of {len(results)} refused"


def test_the_generator_is_seeded_and_varied() -> None:
    a, b = generate(SEED), generate(SEED)
    assert [(c.name, c.files, c.argv) for c in a] == [(c.name, c.files, c.argv) for c in b]
    kinds = {c.name.split("-")[0] for c in a}
    assert kinds == {"project", "lab", "env", "override", "cli"}
    assert len({json.dumps([sorted(c.files), c.argv]) + repr(c.files) for c in a}) > 180  # mostly distinct
