"""The runs table's small modals (#14): a one-line editor (a run's note or tags) and the column
chooser. Both fit 80x24; neither touches the store (the runs screen saves in its workers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, SelectionList, Static


class EditScreen(ModalScreen[str | None]):
    """One line of text: enter saves (after `check`, whose message shows under the input and
    keeps the modal open), esc leaves it as it was."""

    DEFAULT_CSS = """
    EditScreen { align: center middle; }
    #edit { width: 72; max-width: 95%; height: auto; max-height: 90%; border: thick $accent;
            background: $surface; padding: 0 1; }
    #edit-input { margin: 0; }
    #edit-error { color: $error; height: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "cancel")]

    def __init__(self, title: str, value: str, hint: str, check: Callable[[str], str | None] | None = None,
                 placeholder: str = "") -> None:
        super().__init__()
        self.heading, self.value, self.hint, self.check = title, value, hint, check
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="edit"):
            yield Static(self.heading, classes="title")
            yield Input(self.value, placeholder=self.placeholder, id="edit-input")
            yield Static("", id="edit-error")
            yield Static(self.hint, classes="hint")

    def on_mount(self) -> None:
        self.query_one("#edit-error", Static).display = False
        box = self.query_one(Input)
        box.focus()
        box.cursor_position = len(box.value)  # typing goes on from the end of what is there

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.check(event.value) if self.check else None
        if problem:
            error = self.query_one("#edit-error", Static)
            error.update(problem)
            error.display = True
            return
        self.dismiss(event.value)

    def action_close(self) -> None:
        self.dismiss(None)


class ColumnChooser(ModalScreen[set[str] | None]):
    """Which of the runs table's columns show: space or enter shows or hides the highlighted one,
    esc applies the choice (c too). Returns the hidden columns' keys."""

    DEFAULT_CSS = """
    ColumnChooser { align: center middle; }
    #columns { width: 48; max-width: 95%; height: auto; max-height: 90%; border: thick $accent;
               background: $surface; padding: 0 1; }
    #columns-list { height: auto; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,c", "done", "done")]

    def __init__(self, columns: list[tuple[str, str]], hidden: set[str]) -> None:
        """`columns`: (key, label) of every column the table can show."""
        super().__init__()
        self.columns, self.hidden = columns, hidden

    def compose(self) -> ComposeResult:
        with Vertical(id="columns"):
            yield Static("Columns of the runs table", classes="title")
            yield SelectionList[str](*[(label, key, key not in self.hidden) for key, label in self.columns],
                                     id="columns-list")
            yield Static("space: show or hide  ·  esc: done (remembered)", classes="hint")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_done(self) -> None:
        shown = set(self.query_one(SelectionList).selected)
        self.dismiss({key for key, _ in self.columns if key not in shown})
