"""A run's latest evaluation as the app shows it: whether it is today's suite, what differs and
what its fingerprint covers (the same judgement as `fbtui show`). These block (SQLite, hashing the
working tree's files): the app calls them from thread workers. No Textual here."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store


def latest_evaluation(lab: Lab, store: Store, run: dict[str, Any]) -> dict[str, Any] | None:
    """The run's latest evaluation with `covers`, and `today`/`differs` where it can be judged."""
    from fbtui.errors import FBError
    from fbtui.records.show import run_evaluations  # fbtui show's own: one judgement for both

    try:
        evs = run_evaluations(lab, store, run)
    except FBError:
        evs = store.evaluations(run["id"])
    return evs[-1] if evs else None


def summary(ev: dict[str, Any]) -> tuple[str, str]:
    """One line for the run's header, and its style: the key that shows the rest comes first,
    so a narrow terminal cuts what differs, not how to see it."""
    fp = str(ev["fingerprint"])[:12]
    if ev.get("today") is True:
        return f"evaluation {fp}: today's suite  (v: what it covers)", "green"
    if ev.get("today") is False:
        return f"evaluation {fp}: not today's suite (v: why): " + "; ".join(ev.get("differs") or []), "yellow"
    if not isinstance(ev.get("covers"), dict):
        return f"evaluation {fp}: does not say what it covers (v: details)", "dim"
    return f"evaluation {fp}: not judged against today's suite (v: what it covers)", "dim"


def detail_lines(ev: dict[str, Any], width: int = 76) -> list[str]:
    """The evaluation in full: its standing against today's suite, what differs, its results
    and what its fingerprint covers."""
    from fbtui.records.show import covers_lines

    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(ev["created_at"])) if ev.get("created_at") else "-"
    by = f", by re-evaluation #{ev['made_by_run']}" if ev.get("made_by_run") else ""
    out = [f"evaluation {str(ev['fingerprint'])[:12]} ({when}{by})"]
    if ev.get("today") is True:
        out.append("today's suite: the working tree's evaluation code, config and data give the same")
    elif ev.get("today") is False:
        out.append("not today's suite; what differs from the working tree:")
        out += [f"  {d}" for d in ev.get("differs") or []]
        out.append("u on the comparison (or fbtui eval --stale) evaluates it again")
    else:
        out.append("not judged: the project's evaluations do not say what their suites cover")
    scalars = {k: v for k, v in (ev.get("results") or {}).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if scalars:
        out.append("results: " + ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()))
    return out + covers_lines(ev.get("covers"), width)
