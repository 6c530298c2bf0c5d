"""Search across a project's run logs (#14): every stage's spooled log (`.fb/runs/N/STAGE.log`,
"<timestamp> <text>" lines), newest run first, streamed line by line so a log of gigabytes costs
no memory. The CLI prints matches as `#12 train:345: text`; the app lists them and opens the run
view at the line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fbtui.errors import UsageError

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store


@dataclass
class Match:
    run: int
    project: str
    stage: str
    line: int  # 1-based, in the stage's log
    text: str
    t: str  # the line's timestamp (RFC 3339), as the engine gave it


def compile_pattern(pattern: str, ignore_case: bool = False, fixed: bool = False) -> re.Pattern[bytes]:
    """The pattern over raw log bytes; a bad regular expression is one clear line."""
    if not pattern:
        raise UsageError("--grep needs a pattern, for example --grep 'out of memory'")
    source = re.escape(pattern) if fixed else pattern
    try:
        return re.compile(source.encode(), re.IGNORECASE if ignore_case else 0)
    except re.error as e:
        raise UsageError(f"--grep {pattern!r}: not a valid regular expression ({e}); "
                         "--fixed searches for the text as it is") from None


def search_logs(lab: Lab, store: Store, rx: re.Pattern[bytes], *, project: str | None = None,
                runs: list[int] | None = None, stage: str | None = None, limit: int = 1000) -> Iterator[Match]:
    """Matches in the logs of these runs (default: every run of `project`, or of the lab), newest
    run first, stages in their order, at most `limit`."""
    from fbtui.pipeline.paths import run_folder

    where, params = ["1 = 1"], []
    if project:
        where.append("project = ?")
        params.append(project)
    if runs:
        where.append(f"id IN ({','.join('?' * len(runs))})")
        params += runs
    rows = store.query(f"SELECT id, project FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC", params)
    found = 0
    for r in rows:
        folder = run_folder(lab, r["id"])
        for st in store.stages(r["id"]):
            if stage and st["name"] != stage:
                continue
            path = folder / f"{st['name']}.log"
            try:
                f = path.open("rb")
            except OSError:
                continue
            with f:
                for n, raw in enumerate(f, 1):
                    ts, _, text = raw.rstrip(b"\n").partition(b" ")
                    if rx.search(text):
                        yield Match(r["id"], r["project"], st["name"], n, text.decode("utf-8", "replace"),
                                    ts.decode("ascii", "replace"))
                        found += 1
                        if found >= limit:
                            return
