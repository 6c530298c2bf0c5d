"""The comparison's export to a file and its clipboard keys (#14 item 9): E writes the table with
the core's export (`fbtui compare --format`) to a path asked in a small modal; y copies the current
cell, Y the row, C the whole table as Markdown (OSC 52, refused over what terminals take)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.records.rows import AblationTable
    from fbtui.tui.app import FBApp
    from fbtui.tui.widgets.table import FastTable


def default_export(t: AblationTable, suffix: str = ".md") -> str:
    return f".fb/exports/{t.project}-{t.ablation or 'all'}{suffix}"


def export_target(lab: Lab, text: str) -> tuple[Path, str]:
    """The file (relative paths are the lab's) and its format, from its extension; ValueError with
    the reason for a name that says no format."""
    from fbtui.commands.compare import SUFFIXES

    path = Path(text.strip()).expanduser()
    if not text.strip():
        raise ValueError("give a file name, e.g. .fb/exports/table.md")
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path.name}: end the name in .csv, .md, .tex or .json (the extension picks the format)")
    return (path if path.is_absolute() else lab.root / path), fmt


def write_export(path: Path, text: str) -> None:
    """Written whole or not at all (a table half written looks like a table)."""
    if path.is_dir():
        raise OSError(f"{path} is a folder: give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.fb-tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def cell_text(t: AblationTable, row: str, column: str) -> str:
    """A cell as `fbtui compare` prints it: the row's whole name (the table may show it cut), a
    param's value, a metric's mean ± std."""
    r = next(x for x in t.rows if x.name == row)
    if column == "seeds":
        return r.seeds_text
    if column in t.params:
        v = r.params.get(column)
        return "-" if v is None else str(v)
    if column in t.metrics:
        s = r.metrics.get(column)
        return s.text() if s else "-"
    return r.name


def row_text(t: AblationTable, row: str) -> str:
    """The header and the row, tab-separated: they paste into a spreadsheet as two rows."""
    columns = ["row", "seeds", *t.params, *t.metrics]
    return "\t".join(columns) + "\n" + "\t".join(cell_text(t, row, c) for c in columns) + "\n"


class ExportScreen(ModalScreen[str | None]):
    """Where to write the table: a path, its extension the format."""

    DEFAULT_CSS = """
    ExportScreen { align: center middle; }
    #export { width: 76; max-width: 95%; height: auto; max-height: 90%; border: thick $accent;
              background: $surface; padding: 1 2; }
    #export-error { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]

    def __init__(self, lab: Lab, default: str) -> None:
        super().__init__()
        self.lab = lab
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="export"):
            yield Static("Export the comparison to", classes="title")
            yield Input(self.default, id="export-path")
            yield Static(".csv, .md, .tex or .json: the extension picks the format; a relative path is the "
                         "lab's.  enter: write  ·  esc: cancel", classes="hint")
            yield Static("", id="export-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            export_target(self.lab, event.value)
        except ValueError as e:
            self.query_one("#export-error", Static).update(str(e))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CompareClipboard:
    """Mixed into CompareScreen (its bindings name these actions)."""

    if TYPE_CHECKING:
        table: AblationTable | None
        grid: FastTable

        @property
        def fb(self) -> FBApp: ...

        def notify(self, message: str, **kw: object) -> None: ...

    def _rows_ready(self) -> AblationTable | None:
        if self.table is None or not self.table.rows:
            self.notify("nothing in the comparison yet", severity="warning")
            return None
        return self.table

    def action_export_to(self) -> None:
        t = self._rows_ready()
        if t is None:
            return

        def chosen(text: str | None) -> None:
            if text is not None:
                self._write_export(t, text)

        self.fb.push_screen(ExportScreen(self.fb.lab, default_export(t)), chosen)

    @work(thread=True, group="compare-export")
    def _write_export(self, t: AblationTable, text: str) -> None:
        from fbtui.records.export import export

        lab = self.fb.lab
        try:
            path, fmt = export_target(lab, text)
            write_export(path, export(t, fmt))
        except (ValueError, OSError) as e:
            self.fb.call_from_thread(self.notify, f"export failed: {getattr(e, 'strerror', None) or e}",
                                     severity="error", timeout=10)
            return
        shown = lab.rel(path) if path.is_relative_to(lab.root) else str(path)
        self.fb.call_from_thread(self.notify, f"wrote {shown} ({fmt}, {len(t.rows)} rows)", timeout=8)

    def _current_column(self, t: AblationTable) -> str:
        """The column under the table's column cursor where it has one, else the sorted column,
        else the first metric."""
        cols = self.grid.columns
        at = getattr(self.grid, "cursor_column", None)
        if at is None:
            at = self.grid.sort_column
        if at is not None and 0 <= at < len(cols) and cols[at].key != "sel":
            return str(cols[at].key)
        return t.metrics[0] if t.metrics else "variant"

    def action_copy_cell(self) -> None:
        t, row = self._rows_ready(), self.grid.cursor_key
        if t is None or row is None:
            return
        column = self._current_column(t)
        label = "row name" if column == "variant" else column
        self.fb.copy_text(cell_text(t, row, column), f"{label} of {row}")

    def action_copy_row(self) -> None:
        t, row = self._rows_ready(), self.grid.cursor_key
        if t is not None and row is not None:
            self.fb.copy_text(row_text(t, row), f"row {row}")

    def action_copy_table(self) -> None:
        from fbtui.records.export import export

        t = self._rows_ready()
        if t is not None:
            self.fb.copy_text(export(t, "markdown"), "the table as Markdown")
