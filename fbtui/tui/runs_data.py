"""The runs table's data (#14): which runs the app lists (archived ones hidden unless asked),
their rows with tags and notes, filter expressions over them, cancelling, and the remembered
column choice. These functions block (SQLite): the app calls them only from thread workers.
No Textual here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

ACTIVE = ("pending", "queued", "running")
# A re-evaluation is no run of its own: shown (under its run's number) only while it goes on.
LISTED = "(r.eval_of IS NULL OR r.status IN ('pending', 'queued', 'running'))"
# What the app lists by default: archived runs are hidden (kept: A shows them, unarchive brings them back).
SHOWN = f"({LISTED} AND r.archived_at IS NULL)"
HIDDEN_COLUMNS = "runs_hidden_columns"  # the key in .fb/tui.json


def runs_filter(project: str | None, host: str | None, archived: bool = False) -> tuple[str, list[Any]]:
    """The WHERE clause of the runs the table lists; `archived`: archived runs too."""
    where, args = f"WHERE {LISTED if archived else SHOWN}", []
    if project:
        where += " AND r.project = ?"
        args.append(project)
    if host:
        where += " AND (r.host = ? OR (r.host IS NULL AND r.requested_host = ?))"
        args += [host, host]
    return where, args


def runs_stamp(store: Store | None, project: str | None, host: str | None = None, archived: bool = False
               ) -> tuple[Any, ...]:
    """A cheap summary that changes whenever `runs_table` could: polling compares it before
    rebuilding a table of thousands of runs. Its last field counts the active runs (whose
    durations and metrics move without any of the rest changing). Notes and tags count too: a
    `fbtui note` or `fbtui tag` in another terminal shows at the next poll."""
    if store is None:
        return ()
    where, args = runs_filter(project, host, archived)
    row = store.query(
        f"SELECT COUNT(*), MAX(r.id), TOTAL(LENGTH(r.status)), MAX(COALESCE(r.finished_at, 0)), "
        f"MAX(COALESCE(r.started_at, 0)), (SELECT MAX(id) FROM evaluations), TOTAL(LENGTH(r.note)), "
        f"TOTAL(r.archived_at IS NOT NULL), (SELECT COUNT(*) || ':' || TOTAL(run_id * LENGTH(tag)) FROM run_tags), "
        f"SUM(r.status IN ('pending', 'queued', 'running')) AS active FROM runs r {where}", args)[0]
    return tuple(row.values())


def runs_table(store: Store | None, project: str | None, host: str | None = None, limit: int = 20000,
               metrics: list[str] | None = None, archived: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """Every run of a project (or of all) with commit, host, times, note, tags and a few key final
    metrics, in one query (a pivot, as MEASURED.md found fastest) and one for the tags."""
    if store is None:
        return [], []
    where, args = runs_filter(project, host, archived)
    if metrics is None:
        keys = [r["key"] for r in store.query(
            f"SELECT DISTINCT m.key FROM run_metrics m JOIN runs r ON r.id = m.run_id {where} ORDER BY m.key",
            args)]
        evals = [k for k in keys if k.startswith("eval/") and k != "eval/n"]
        metrics = (evals or [k for k in keys if k.startswith("val/")] or keys)[:4]
    cols = ", ".join(f"(SELECT value FROM run_metrics WHERE run_id = r.id AND key = ?) AS m{i}"
                     for i in range(len(metrics)))
    sql = (f"SELECT r.id, r.project, r.ablation, r.variant, r.seed, r.status, r.reason, r.host, r.requested_host, "
           f"r.created_at, r.started_at, r.finished_at, r.eval_of, r.note, r.archived_at, c.sha, c.dirty"
           f"{', ' + cols if cols else ''} "
           f"FROM runs r LEFT JOIN commits c ON c.id = r.commit_id {where} ORDER BY r.id DESC LIMIT {int(limit)}")
    rows = store.query(sql, [*metrics, *args])
    # a re-evaluation going on shows as its run: with that run's tags
    tags = store.tags_of([r["eval_of"] or r["id"] for r in rows]) if rows else {}
    for r in rows:
        r["metrics"] = {m: r.pop(f"m{i}") for i, m in enumerate(metrics)}
        r["tags"] = tags.get(r["eval_of"] or r["id"], [])
    return rows, metrics


def expression_ids(store: Store, expr: str, project: str | None, archived: bool = False) -> set[int]:
    """The runs a filter expression (`lr<0.01 and eval/accuracy>0.9`) matches; FilterError (with
    the column) when it does not parse or names nothing these runs have."""
    from fbtui.records.filters import select

    return set(select(store, expr, project=project, archived=archived))


def cancel_runs(lab: Lab, store: Store, run_ids: list[int]) -> list[int]:
    """Ask the supervisor to stop these runs; returns those that were still going."""
    from fbtui.pipeline.supervisor import ensure_supervisor

    asked = []
    for rid in run_ids:
        if store.run(rid)["status"] in ACTIVE:
            store.update_run(rid, cancel_requested=1)
            asked.append(rid)
    if asked:
        ensure_supervisor(lab)
    return asked


def run_label(run: dict[str, Any], width: int = 40) -> str:
    """"#12 (digits-mlp depth deep seed 0)": a run named in a question."""
    what = " ".join(str(x) for x in (run["project"], run.get("ablation"), run.get("variant")) if x)
    if run.get("seed") is not None and run.get("variant"):
        what += f" seed {run['seed']}"
    if len(what) > width:
        what = what[:width - 1] + "…"
    return f"#{run.get('eval_of') or run['id']} ({what})"


def cancel_question(run: dict[str, Any], stages: list[dict[str, Any]]) -> tuple[str, str]:
    """What cancelling this run does, said before it is done: the question and what happens to
    each of its stages ("cancel run #12 (digits-mlp sweep hidden=64…)", "its running stage train
    is stopped, evaluate never starts")."""
    what = " ".join(x for x in (run["project"], run.get("ablation"), run.get("variant")) if x)
    if len(what) > 40:
        what = what[:39] + "…"
    question = f"cancel run #{run.get('eval_of') or run['id']} ({what})?"
    if run["status"] not in ACTIVE:
        return question, f"it has already {run['status']}: nothing to stop"
    running = [s["name"] for s in stages if s["status"] == "running"]
    waiting = [s["name"] for s in stages if s["status"] in ("pending", "queued")]
    if not running and run["status"] != "running":
        return question, "it has not started: " + (f"{', '.join(waiting)} never run" if waiting else "nothing runs")
    parts = []
    if running:
        parts.append(f"its running stage{'s' if len(running) > 1 else ''} {', '.join(running)} "
                     f"{'are' if len(running) > 1 else 'is'} stopped")
    if waiting:
        parts.append(f"{', '.join(waiting)} never start{'s' if len(waiting) == 1 else ''}")
    return question, ", ".join(parts) or "it stops"
