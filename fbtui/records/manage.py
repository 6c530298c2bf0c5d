"""Runs management (#14): a run's note and tags, archiving (hidden from tables and comparisons,
kept, undone with unarchive) and deleting (its store rows, spool and run folder).

Deleting refuses what it would break:
- a run in progress (pending, queued or running, or with a re-evaluation in progress): the
  supervisor still writes its rows and folder;
- a run whose stage outputs another run reuses (a cache hit: that run's stage has cached_from
  pointing at it and its `out` is this run's folder or volume). The reusing run's checkpoint lives
  only there, its artifact rows are copies whose origin the cache keys of later stages read, and
  `fbtui rerun`/`eval` of it need those files: deleting the source would silently break a run the
  person kept. Deleting both together is fine, and archiving the source hides it while keeping them.
A run's hidden re-evaluations (`eval_of`) go with it. Run numbers are never given again.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import FBError, UsageError
from fbtui.output import size_text

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

ACTIVE = ("pending", "queued", "running")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/+@-]{0,63}")
MAX_NOTE = 10_000


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def runs_named(store: Store, run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The runs table rows of these runs, in order; an unknown (or deleted) number is one clear error."""
    from fbtui.records.show import get_run

    return [get_run(store, rid) for rid in dict.fromkeys(run_ids)]


def note(store: Store, run_id: int, text: str | None) -> str | None:
    """Set a run's note (empty clears it); returns the note now."""
    runs_named(store, [run_id])
    text = (text or "").strip() or None
    if text is not None and len(text) > MAX_NOTE:
        raise UsageError(f"a note is at most {MAX_NOTE:,} characters (this one has {len(text):,})")
    store.set_note(run_id, text)
    return text


def check_tags(tags: Sequence[str]) -> list[str]:
    bad = [t for t in tags if not TAG.fullmatch(t)]
    if bad:
        raise UsageError(f"tag {bad[0]!r}: a tag is one word of letters, digits and _ . : / + @ - (up to 64, "
                         "not starting with - . : / + @)")
    return list(dict.fromkeys(tags))


def tag(store: Store, run_id: int, tags: Sequence[str], *, remove: bool = False) -> list[str]:
    """Add (or remove) tags of a run; returns its tags now, sorted."""
    runs_named(store, [run_id])
    tags = check_tags(tags)
    if remove:
        store.remove_tags(run_id, tags)
    else:
        store.add_tags(run_id, tags)
    return store.tags(run_id)


def archive(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Hide finished runs from tables and comparisons (kept: `unarchive` undoes it). Returns the
    runs that were not archived before. A run in progress is refused."""
    runs = runs_named(store, run_ids)
    ids = [r["id"] for r in runs]
    # a re-evaluation in progress is archived with its run: it would leave ps while it runs
    evals = store.query(f"SELECT * FROM runs WHERE eval_of IN ({','.join('?' * len(ids))}) AND status IN "
                        f"{ACTIVE!r} ORDER BY id", ids) if ids else []
    busy = [r for r in [*runs, *evals] if r["status"] in ACTIVE]
    if busy:
        raise FBError(f"cannot archive runs in progress: {_status_list(busy)}",
                      hint=f"wait for them to end, or stop them: fbtui cancel {' '.join(str(r['id']) for r in busy)}")
    return store.set_archived(ids, True)


def unarchive(store: Store, run_ids: Sequence[int]) -> list[int]:
    """Bring archived runs back; returns those that were archived."""
    runs = runs_named(store, run_ids)
    return store.set_archived([r["id"] for r in runs], False)


def _status_list(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"#{r['id']} ({r['status']}" + (f", a re-evaluation of #{r['eval_of']}" if r["eval_of"] else "")
                     + ")" for r in runs)


@dataclass
class DeletePlan:
    """What `delete` removes: the runs named, their hidden re-evaluations, their folders (with
    how many files and bytes) and rows; `volumes`: remote volumes it leaves (stage, host, name)."""

    named: list[int]
    runs: list[int]  # named + their re-evaluations
    folders: list[tuple[Path, int, int]]  # (folder, files, bytes) that exist
    rows: dict[str, int]
    volumes: list[tuple[int, str, str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What would go, a line each (the CLI without --yes, the app's confirmation)."""
        out = []
        extra = [r for r in self.runs if r not in self.named]
        out.append(f"runs {_ids(self.named)}" + (f" and their re-evaluations {_ids(extra)}" if extra else ""))
        counts = ", ".join(f"{n} {t}" for t, n in self.rows.items() if n)
        out.append(f"store rows: {counts or 'the runs only'}")
        for folder, files, size in self.folders:
            out.append(f"folder {folder} ({files} files, {size_text(size, 'bytes')}): logs, config, stage outputs")
        for rid, stage, host, name in self.volumes:
            out.append(f"left on host {host}: volume {name} (run #{rid} {stage}); docker volume rm {name} there")
        return out


def _tally(folder: Path) -> tuple[int, int]:
    """Files and bytes under a folder, links counted as themselves, never followed."""
    files = size = 0
    for root, dirs, names in os.walk(folder, followlinks=False):
        for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(root, d)))]:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
                files += 1
            except OSError:
                pass
    return files, size


def plan_delete(lab: Lab, store: Store, run_ids: Sequence[int]) -> DeletePlan:
    """What deleting these runs removes, or one clear error for what it would break."""
    from fbtui.pipeline.paths import run_folder

    named = runs_named(store, run_ids)
    ids = [r["id"] for r in named]
    marks = ",".join("?" * len(ids))
    evals = store.query(f"SELECT * FROM runs WHERE eval_of IN ({marks}) ORDER BY id", ids)
    runs = named + [r for r in evals if r["id"] not in ids]
    every = [r["id"] for r in runs]
    busy = [r for r in runs if r["status"] in ACTIVE]
    if busy:
        stop = sorted({r["id"] for r in busy})
        raise FBError(f"cannot delete runs in progress: {_status_list(busy)}",
                      hint=f"wait for them to end, or stop them first: fbtui cancel {' '.join(map(str, stop))}")
    marks = ",".join("?" * len(every))
    users = store.query(
        f"SELECT s.run_id AS user, s.name, src.run_id AS source FROM stages s JOIN stages src ON "
        f"(src.id = s.cached_from OR (s.out IS NOT NULL AND s.out = src.out)) WHERE src.run_id IN ({marks}) "
        f"AND src.cached_from IS NULL AND s.run_id NOT IN ({marks}) ORDER BY s.run_id", (*every, *every))
    if users:
        sources = sorted({u["source"] for u in users})
        reusing = sorted({u["user"] for u in users})
        raise FBError(f"run{'s' if len(sources) > 1 else ''} {_ids(sources)} hold{'' if len(sources) > 1 else 's'} "
                      f"stage outputs that {_ids(reusing)} reuse (cache hits whose files live there): deleting "
                      "would break them",
                      hint=f"delete them together (fbtui delete {' '.join(map(str, [*ids, *reusing]))}), or archive "
                           f"instead (fbtui archive {' '.join(map(str, ids))}): hidden, nothing breaks")
    rows = {t: store.query(f"SELECT COUNT(*) AS n FROM {t} WHERE run_id IN ({marks})", every)[0]["n"]
            for t in ("stages", "params", "metrics", "run_metrics", "artifacts", "evaluations", "run_tags")}
    folders = []
    for rid in every:
        folder = run_folder(lab, rid)
        if folder.is_symlink():
            folders.append((folder, 1, 0))
        elif folder.is_dir():
            folders.append((folder, *_tally(folder)))
    volumes = [(s["run_id"], s["name"], s["host"], s["out"]) for s in store.query(
        f"SELECT run_id, name, host, out FROM stages WHERE run_id IN ({marks}) AND host IS NOT NULL AND "
        "host <> 'local' AND out IS NOT NULL AND cached_from IS NULL ORDER BY run_id, idx", every)]
    return DeletePlan([r["id"] for r in named], every, folders, rows, volumes)


def _rmtree(folder: Path) -> list[str]:
    """Remove a folder tree (links inside are removed, never followed); what could not go."""
    errors: list[str] = []
    shutil.rmtree(folder, onerror=lambda _f, path, exc: errors.append(
        f"{path}: {getattr(exc[1], 'strerror', None) or exc[1]}"))
    return errors


@dataclass
class Deleted:
    runs: list[int]
    rows: dict[str, int]
    failed: dict[int, str]  # run -> why its folder could not go (its rows are kept)


def delete(lab: Lab, store: Store, plan: DeletePlan) -> Deleted:
    """Remove what `plan` lists: each run's folder first (a link is removed, never followed), then
    the rows of the runs whose folder went, in one transaction. A run whose folder cannot be
    removed keeps its rows (and its re-evaluations theirs), so deleting it again finishes the job."""
    from fbtui.pipeline.paths import run_folder

    again = plan_delete(lab, store, plan.named)  # the runs may have changed since the plan was shown
    failed: dict[int, str] = {}
    for rid in again.runs:
        folder = run_folder(lab, rid)
        try:
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
            elif folder.is_dir():
                errors = _rmtree(folder)
                if errors:
                    failed[rid] = f"{len(errors)} could not be removed, e.g. {errors[0]}"
        except OSError as e:
            failed[rid] = f"{folder}: {e.strerror or e}"
    parents = {r["id"]: r["eval_of"] for r in store.query(
        f"SELECT id, eval_of FROM runs WHERE id IN ({','.join('?' * len(again.runs))})", again.runs)}
    gone = [rid for rid in again.runs if rid not in failed and parents.get(rid) not in failed]
    rows = store.delete_runs(gone)
    return Deleted(gone, rows, failed)
