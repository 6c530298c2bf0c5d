"""A stage whose progress the store cannot take now (disk full, I/O error, lock timeout) is
`degraded`: loudly, at once, and with nothing lost. Its metric points wait in its metrics.jsonl
past the committed offset (the offset is the truth), its outcome waits with its container, and
both are retried until the store takes them; a stage is never failed for it.

The state lives here, in the supervisor's memory: writing `degraded` to a store that has no room
may fail too, so the supervisor's log says it at once and the store is told as soon as it can be."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fbtui.pipeline.ingest import store_fault

if TYPE_CHECKING:
    from fbtui.store import Store

RETRY_FIRST = 0.5  # seconds before the store is tried again; doubles while it keeps failing
RETRY_MAX = 5.0  # a re-read of a long backlog per retry is cheap at this pace


def say(line: str) -> None:
    """A line in the supervisor's log (its stderr), at once; a log on the full disk drops it."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


class StoreHealth:
    """One stage's standing with the store, as its watcher sees it."""

    def __init__(self, store: Store, run_id: int, stage: str, recorded: str | None,
                 waiting: Callable[[], str]) -> None:
        self.store, self.run_id, self.stage = store, run_id, stage
        self.reason: str | None = None  # why the store cannot take it now (None: fine)
        self.recorded = recorded  # what the store's stages.degraded holds, as far as we know
        self.waiting = waiting  # "2,300 metric points wait past byte 91,000 of metrics.jsonl"
        self.since: float | None = None
        self.retry_at = 0.0
        self.backoff = RETRY_FIRST

    def _say(self, text: str) -> None:
        say(f"run {self.run_id} stage {self.stage}: {text}")

    def failed(self, e: BaseException, what: str = "its metric points") -> bool:
        """A write for this stage failed. A store fault degrades the stage (True); anything else is
        not ours to wait out (False: the caller raises or retries as before)."""
        reason = store_fault(e, self.store.path)
        if reason is None:
            return False
        now = time.monotonic()
        if reason != self.reason:
            self.since = self.since or now
            try:
                waiting = self.waiting()
            except Exception:
                waiting = "its metric points wait in metrics.jsonl"
            self._say(f"degraded: {reason} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                      f"{waiting}; {what} are retried until the store takes them: nothing is lost")
            self.reason = reason
        self.retry_at, self.backoff = now + self.backoff, min(self.backoff * 2, RETRY_MAX)
        if "locked" not in reason:  # a locked store would keep this write waiting as long again
            self._record(reason)
        return True

    def _record(self, reason: str | None) -> bool:
        if self.recorded == reason:
            return True
        try:
            self.store.update_stage(self.run_id, self.stage, degraded=reason)
        except Exception:
            return False  # the store cannot take even this: the log said it, the next try writes it
        self.recorded = reason
        return True

    def ok(self) -> None:
        """A write for this stage went through: it is caught up, and the store is told so."""
        self.backoff, self.retry_at = RETRY_FIRST, 0.0
        if self.reason is None and self.recorded is None:
            return
        if not self._record(None):
            return  # still cannot write: degraded it stays, the next ingest tries again
        self.caught_up()

    def caught_up(self) -> None:
        """The store took the stage's progress (its outcome may have cleared `degraded` itself)."""
        if self.reason is not None:
            took = time.monotonic() - (self.since or time.monotonic())
            self._say(f"caught up: the store takes its progress again after {took:.0f} s degraded ({self.reason})")
        self.reason = self.recorded = self.since = None

    def due(self) -> bool:
        """Whether to try the store now: at once while fine, with a growing pause while it fails."""
        return self.reason is None or time.monotonic() >= self.retry_at

    def pause(self) -> None:
        """Wait until the store is worth trying again."""
        time.sleep(max(0.05, self.retry_at - time.monotonic()))
