"""The runs table's management keys (#14): a run's note (n) and tags (t), archiving (a, undone
with u or a on an archived run that A shows), deleting (D, after a confirmation naming what
goes; a refused delete says why) and the column chooser (c, remembered in .fb/tui.json). Space
marks runs: then x, a and D act on every marked run after one question, d diffs two marked runs,
esc clears the marks. The store work runs in thread workers; the core (fbtui/records/manage.py)
decides what may happen."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work

from fbtui.errors import FBError
from fbtui.tui import data, runs_data
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row

MARK = "●"  # before a marked run's number


def ids_text(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def runs_text(n: int) -> str:
    return f"{n} run{'s' if n != 1 else ''}"


class RunsManagement(FBScreen):
    """RunsScreen's keys that change runs; RunsScreen fills `info` and `columns` on each load."""

    info: dict[int, dict[str, Any]]  # row key -> its run (run, note, tags, status, archived, label)
    columns: list[tuple[str, str]]  # every column the table can show now
    hidden: set[str] | None
    show_archived: bool
    last_archived: list[int]
    marked: set[int]  # row keys marked with space

    def load(self, force: bool = False) -> Any:  # RunsScreen's worker
        raise NotImplementedError

    def _run(self) -> dict[str, Any] | None:
        key = self.query_one(FastTable).cursor_key
        return self.info.get(key) if key is not None else None

    # ------------------------------------------------------------ marks (space)

    def apply_marks(self, cols: list[Column], rows: list[Row]) -> None:
        """MARK before the marked rows' run numbers (RUN is always the first column), others bare;
        RUN widens for it. Marks of runs no longer listed are dropped."""
        keys = {r.key for r in rows}
        self.marked &= keys
        if not cols:
            return
        for r in rows:
            cell = str(r.cells[0]).removeprefix(MARK)
            r.cells[0] = MARK + cell if r.key in self.marked else cell
            if r.key in self.marked:
                cols[0].width = min(max(cols[0].width, len(r.cells[0])), cols[0].max_width)

    def show_marks(self) -> None:
        table = self.query_one(FastTable)
        self.apply_marks(table.columns, table.rows)
        table.set_data(table.columns, table.rows, measured=True)
        self.marks_changed()

    def marks_changed(self) -> None:  # RunsScreen: its title and count line
        raise NotImplementedError

    def action_mark(self) -> None:
        key = self.query_one(FastTable).cursor_key
        if key is None:
            return
        self.marked ^= {key}
        self.show_marks()

    def clear_marks(self) -> None:
        if self.marked:
            self.marked = set()
            self.show_marks()

    def _marked(self) -> list[tuple[int, dict[str, Any]]]:
        """(row key, its run) of the marked rows, in run order."""
        return sorted(((k, self.info[k]) for k in self.marked if k in self.info), key=lambda x: (x[1]["run"], x[0]))

    def cancel_marked(self) -> None:
        from fbtui.tui.screens.confirm import ConfirmScreen

        marked = self._marked()
        going = [k for k, r in marked if r["status"] in runs_data.ACTIVE]
        left = [f"#{r['run']} ({r['status']})" for k, r in marked if k not in going]
        if not going:
            self.notify(f"nothing to cancel: none of the {runs_text(len(marked))} marked is going")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.fb.cancel(going)  # the same core call as x on one run
                self.clear_marks()

        detail = "their running stages are stopped; stages not started never run"
        if left:
            detail += "\nleft as they are (not going): " + ", ".join(left)
        self.app.push_screen(ConfirmScreen(Text(f"cancel {runs_text(len(going))}: {ids_text(going)}?"),
                                           Text(detail)), answered)

    def archive_marked(self) -> None:
        from fbtui.tui.screens.confirm import ConfirmScreen

        marked = self._marked()
        todo = list(dict.fromkeys(r["run"] for _, r in marked
                                  if not r["archived"] and r["status"] not in runs_data.ACTIVE))
        left = [f"#{r['run']} ({'archived already' if r['archived'] else r['status']})"
                for _, r in marked if r["run"] not in todo]
        if not todo:
            self.notify(f"nothing to archive: {', '.join(left)}", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.save("archive", todo[0], "", todo)
                self.clear_marks()

        detail = ("hidden from the runs table, the dashboard and comparisons; kept, with their logs and outputs. "
                  "u brings them back; A shows archived runs.")
        if left:
            detail += "\nleft as they are: " + ", ".join(left)
        self.app.push_screen(ConfirmScreen(Text(f"archive {runs_text(len(todo))}: {ids_text(todo)}?"),
                                           Text(detail)), answered)

    # ------------------------------------------------------------ the highlighted run

    def action_note(self) -> None:
        from fbtui.tui.screens.runs_modals import EditScreen

        run = self._run()
        if run is None:
            return

        def edited(text: str | None) -> None:
            if text is not None:
                self.save("note", run["run"], text)

        self.app.push_screen(EditScreen(f"Note of run {run['label']}", run["note"] or "",
                                        "enter: save  ·  empty clears it  ·  esc: cancel",
                                        placeholder="what this run tried, what it showed"), edited)

    def action_tags(self) -> None:
        from fbtui.records.manage import check_tags
        from fbtui.tui.screens.runs_modals import EditScreen

        run = self._run()
        if run is None:
            return

        def check(text: str) -> str | None:
            try:
                check_tags(text.split())
            except FBError as e:
                return e.message
            return None

        def edited(text: str | None) -> None:
            if text is not None:
                self.save("tags", run["run"], text)

        self.app.push_screen(EditScreen(f"Tags of run {run['label']}", " ".join(run["tags"]),
                                        "space between tags  ·  enter: save  ·  esc: cancel", check,
                                        placeholder="baseline lr-sweep …"), edited)

    def action_columns(self) -> None:
        from fbtui.tui.screens.runs_modals import ColumnChooser

        def chosen(hidden: set[str] | None) -> None:
            if hidden is not None and hidden != (self.hidden or set()):
                # the columns this table cannot show now (another project's metrics) stay as they were
                self.hidden = hidden | ((self.hidden or set()) - {k for k, _ in self.columns})
                self.save("columns", 0, "")

        self.app.push_screen(ColumnChooser(self.columns, self.hidden or set()), chosen)

    def action_toggle_archived(self) -> None:
        self.show_archived = not self.show_archived
        self.notify("archived runs shown: a on one brings it back" if self.show_archived else "archived runs hidden")
        self.load(force=True)

    def action_unarchive_last(self) -> None:
        if not self.last_archived:
            self.notify("nothing archived here to bring back (A shows archived runs)")
            return
        self.save("unarchive", 0, "", self.last_archived)

    def action_archive(self) -> None:
        from fbtui.tui.screens.confirm import ConfirmScreen

        if self.marked:
            self.archive_marked()
            return
        run = self._run()
        if run is None:
            return
        rid = run["run"]
        if run["archived"]:
            self.save("unarchive", rid, "", [rid])
            return
        if run["status"] in runs_data.ACTIVE:
            self.notify(f"cannot archive run #{rid}: it is {run['status']} (x cancels it)", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.save("archive", rid, "", [rid])

        self.app.push_screen(ConfirmScreen(
            Text(f"archive run {run['label']}?"), "hidden from the runs table, the dashboard and comparisons; "
            "kept, with its logs and outputs. u brings it back; A shows archived runs."), answered)

    def action_delete(self) -> None:
        if self.marked:  # every marked run, in one plan and one question
            self.plan_delete(list(dict.fromkeys(r["run"] for _, r in self._marked())))
            return
        run = self._run()
        if run is not None:
            self.plan_delete([run["run"]])

    # ------------------------------------------------------------ workers that change the store

    @work(thread=True, group="runs-plan")
    def plan_delete(self, rids: list[int]) -> None:
        from fbtui.records.manage import plan_delete

        try:
            plan = plan_delete(self.fb.lab, self.fb.stores.create(), rids)
        except FBError as e:  # refused: the reason, never a traceback
            title = f"run #{rids[0]} is not deleted" if len(rids) == 1 else f"runs {ids_text(rids)} are not deleted"
            self.app.call_from_thread(self.app.notify, str(e), title=title, severity="error",
                                      timeout=12, markup=False)
            return
        self.deliver(self._ask_delete, plan)

    def _ask_delete(self, plan: Any) -> None:
        from fbtui.tui.screens.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self.save("delete", plan.named[0], "", plan)
                self.clear_marks()

        ids = ids_text(plan.named)
        what = f"run {ids}" if len(plan.named) == 1 else f"{runs_text(len(plan.named))}: {ids}"
        self.app.push_screen(ConfirmScreen(f"delete {what} for good? This cannot be undone.",
                                           Text("\n".join(plan.lines()))), answered)

    @work(thread=True, group="runs-save")
    def save(self, what: str, rid: int, text: str, arg: Any = None) -> None:
        """Store work of the keys: note, tags, archive, unarchive, delete, columns (remembered)."""
        from fbtui.records import manage

        say, severity = "", "information"
        try:
            if what == "columns":
                data.save_state(self.fb.lab, **{runs_data.HIDDEN_COLUMNS: sorted(self.hidden or ())})
            elif what == "note":
                now = manage.note(self.fb.stores.create(), rid, text)
                say = f"note of #{rid} saved" if now else f"note of #{rid} cleared"
            elif what == "tags":
                store = self.fb.stores.create()
                want = manage.check_tags(text.split())
                manage.tag(store, rid, [t for t in store.tags(rid) if t not in want], remove=True)
                tags = manage.tag(store, rid, want)
                say = f"tags of #{rid}: {' '.join(tags) or 'none'}"
            elif what == "archive":
                changed = manage.archive(self.fb.stores.create(), arg)
                self.last_archived = changed or self.last_archived
                done = changed or arg
                say = (f"archived {ids_text(done)}: hidden, kept. u brings {'it' if len(done) == 1 else 'them'} "
                       f"back (or A shows archived runs, a on one unarchives; "
                       f"fbtui archive {' '.join(map(str, done))} --undo)")
            elif what == "unarchive":
                changed = manage.unarchive(self.fb.stores.create(), arg)
                self.last_archived = [i for i in self.last_archived if i not in changed]
                say = f"brought back {', '.join(f'#{i}' for i in changed)}" if changed else "already shown"
            elif what == "delete":
                gone = manage.delete(self.fb.lab, self.fb.stores.create(), arg)
                say = f"deleted {', '.join(f'#{i}' for i in gone.runs) or 'nothing'}: rows, logs and outputs"
                if gone.failed:
                    severity = "warning"
                    say += "; kept (its folder could not go): " + "; ".join(
                        f"#{i}: {why}" for i, why in gone.failed.items())
        except FBError as e:
            self.app.call_from_thread(self.app.notify, str(e), severity="error", timeout=12, markup=False)
            return
        if say:
            self.app.call_from_thread(self.app.notify, say, severity=severity, timeout=10, markup=False)
        self.deliver(self.load, True)
