"""`?`: the keys of the screen below and the app's conventions."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

CONVENTIONS = [
    ("ctrl+p", "command palette: Switch project: …, compare, runs, hosts, builds"),
    ("esc", "back"),
    ("q", "quit (runs go on: a supervisor runs them)"),
    ("P / H / B", "projects / hosts / builds"),
    ("L", "leaderboards of the lab's evaluation suites (common/suites.yaml)"),
    ("s / S", "in tables: sort by the next column / reverse; a click on a header sorts too"),
    ("← →", "in wide tables: scroll a column at a time (▸ on the header: more to the right)"),
    ("/", "search (log) or filter (runs table)"),
    ("i d R A", "in a run: its detail (config, record), diff against another run, rerun / clone, artifacts"),
    ("ctrl+g", "grep: a pattern in the logs of the project's runs; enter opens the run at the line"),
    ("y", "copy: the run id (run view, runs table), a cell of the comparison (Y its row, C the table)"),
]


def own_bindings(screen: Screen[object]) -> list[Binding]:
    """The bindings fbtui's own screens and widgets declare (not Textual's built-in scrolling and
    text-editing keys), the screen's first."""
    out: list[Binding] = []
    classes: list[type] = []
    for node in [screen, *screen.query("*").results()]:
        if not node.display:
            continue
        for cls in type(node).__mro__:
            if cls.__module__.startswith("fbtui.") and cls not in classes:
                classes.append(cls)
    for cls in classes:
        out += [b for b in cls.__dict__.get("BINDINGS", []) if isinstance(b, Binding)]
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "close"),
    ]

    def __init__(self, below: Screen[object]) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        t = Table(show_header=False, box=None, padding=(0, 2))
        t.add_column(style="bold cyan")
        t.add_column()
        seen: set[str] = set()
        for b in own_bindings(self.below):
            if b.key in seen or b.description in ("", None):
                continue
            seen.add(b.key)
            t.add_row(b.key_display or b.key, b.tooltip or b.description)
        t.add_row("", "")
        for k, v in CONVENTIONS:
            t.add_row(k, v)
        with VerticalScroll(id="help"):
            yield Static(f"Keys: {type(self.below).__name__.removesuffix('Screen').lower()}", classes="title")
            yield Static(t)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
