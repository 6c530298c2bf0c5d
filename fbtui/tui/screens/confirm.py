"""A yes/no question before something that queues work (y or enter: yes; n or esc: no)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str | Text, detail: str | Text = "") -> None:
        """A Text is shown as it is (paths and run names with [brackets] are no markup)."""
        super().__init__()
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="confirm"):  # a long detail (many runs) scrolls at 80x24
            yield Static(self.question, classes="title")
            if self.detail:
                yield Static(self.detail, classes="hint")
            yield Static("y / enter: yes    n / esc: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
