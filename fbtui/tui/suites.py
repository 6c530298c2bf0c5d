"""Lab-wide evaluation suites as the app shows them: the list of suites with how many runs each
scored, and one suite's leaderboard (the same `leaderboard` as `fbtui leaderboard NAME`). These
block (reading common/suites.yaml and the lab's code, SQLite, hashing the working tree's files):
the app calls them only from thread workers. No Textual here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.records.leaderboard import Board
    from fbtui.store import Store

ACTIVE = "('pending', 'queued', 'running')"


@dataclass
class SuiteRow:
    name: str
    runs: int  # runs of their own with an evaluation on it (any version)
    auto: list[str]
    description: str


@dataclass
class Suites:
    rows: list[SuiteRow] = field(default_factory=list)
    error: str | None = None  # a broken common/suites.yaml: its one line (file:line)


@dataclass
class Standing:
    """One suite's board, or why there is none."""

    name: str
    board: Board | None = None
    error: str | None = None
    busy: list[int] = field(default_factory=list)  # stale runs being scored now (their hidden run goes on)


def one_line(e: BaseException) -> str:
    """An error as one line: an FBError's message (no hint), else the exception's type and text."""
    text = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
    return str(text).splitlines()[0] if str(text) else type(e).__name__


def counts(store: Store | None) -> dict[str, int]:
    """suite -> how many runs of their own were scored on it (as `fbtui leaderboard` counts)."""
    if store is None:
        return {}
    return store.suite_counts()


def suite_rows(lab: Lab, store: Store | None) -> Suites:
    from fbtui.config.suites import load_suites

    try:
        suites = load_suites(lab)
    except FBError as e:
        return Suites(error=one_line(e))
    n = counts(store)
    return Suites([SuiteRow(s.name, n.get(s.name, 0), list(s.spec.auto), s.spec.description)
                   for s in suites.values()])


def stamp(store: Store | None, suite: str) -> tuple[Any, ...]:
    """Changes whenever the board could: an evaluation recorded, a scoring run started or ended."""
    if store is None:
        return ()
    row = store.query(
        "SELECT (SELECT MAX(id) FROM evaluations WHERE suite = ?) AS ev, "
        f"(SELECT COUNT(*) FROM runs WHERE suite = ? AND status IN {ACTIVE}) AS active, "
        "(SELECT MAX(id) FROM runs WHERE suite = ?) AS last", (suite, suite, suite))[0]
    return tuple(row.values())


def standing(lab: Lab, store: Store | None, name: str) -> Standing:
    """The suite's board as today's working tree judges it (its suite re-read: it may have changed)."""
    from fbtui.config.suites import get_suite
    from fbtui.records.leaderboard import leaderboard

    try:
        suite = get_suite(lab, name)
        if store is None:
            return Standing(name)
        board = leaderboard(lab, store, suite)
    except FBError as e:
        return Standing(name, error=one_line(e))
    going = {r["eval_of"] for r in store.query(
        f"SELECT eval_of FROM runs WHERE suite = ? AND eval_of IS NOT NULL AND status IN {ACTIVE}", (name,))}
    return Standing(name, board, busy=sorted(going & set(board.stale)))


def score(lab: Lab, store: Store, name: str, run_ids: list[int]) -> list[int]:
    """`fbtui eval --suite NAME RUN...`: queue each run's scoring on today's version of the suite
    (every run checked before any is queued); returns the hidden runs' ids."""
    from fbtui.config.suites import get_suite
    from fbtui.pipeline.suite_runs import queue_suite

    return queue_suite(lab, store, get_suite(lab, name), run_ids)
