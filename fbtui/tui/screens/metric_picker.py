"""A small modal list of a run's metric groups and keys, filtered as you type: what a chart shows.
Enter picks the highlighted line, esc keeps the chart as it is."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from fbtui.tui.metric_groups import Pick, picker_entries


class MetricPicker(ModalScreen[Pick | None]):
    DEFAULT_CSS = """
    MetricPicker { align: center middle; }
    #picker { width: 64; max-width: 95%; height: 20; max-height: 95%; border: thick $accent;
              background: $surface; padding: 0 1; }
    #picker-filter { margin: 0; }
    #picker-list { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "cancel"),
        # the filter box keeps the focus (typing filters); the arrows move in the list
        Binding("down", "move('cursor_down')", show=False),
        Binding("up", "move('cursor_up')", show=False),
        Binding("pagedown", "move('page_down')", show=False),
        Binding("pageup", "move('page_up')", show=False),
    ]

    def __init__(self, keys: list[str], current: Pick | None = None, *, groups: bool = True,
                 title: str = "Chart which metric?") -> None:
        super().__init__()
        self.keys, self.current, self.groups, self.heading = keys, current, groups, title
        self.entries: list[tuple[Pick | None, str]] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Static(self.heading, classes="title")
            yield Input(placeholder="type to filter", id="picker-filter")
            yield OptionList(id="picker-list")
            hint = "name/* overlays a group  ·  " if self.groups else ""
            yield Static(f"{hint}enter: show  ·  esc: cancel", classes="hint")

    def on_mount(self) -> None:
        self.fill("")
        self.query_one(Input).focus()

    def fill(self, text: str) -> None:
        self.entries = picker_entries(self.keys, text, groups=self.groups)
        box = self.query_one(OptionList)
        box.set_options(Option(label, id=str(i), disabled=pick is None)
                        for i, (pick, label) in enumerate(self.entries))
        picks = [p for p, _ in self.entries]
        # at first the chart's current choice; once typing, the first group or key that starts with
        # the text (`val/acc`: val/accuracy, not eval/accuracy), else the first holding it
        needle = text.strip().lower()
        names = [p.name.lower() if p is not None else None for p in picks]
        at = picks.index(self.current) if not needle and self.current in picks else next(
            (i for i, n in enumerate(names) if n is not None and n.startswith(needle)), None)
        if at is None:
            at = next((i for i, n in enumerate(names) if n is not None and needle in n), None)
        box.highlighted = at
        if at is not None:
            box.scroll_to_highlight()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        at = self.query_one(OptionList).highlighted
        if at is not None and self.entries[at][0] is not None:
            self.dismiss(self.entries[at][0])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        pick = self.entries[int(event.option.id or 0)][0]
        if pick is not None:
            self.dismiss(pick)

    def action_move(self, how: str) -> None:
        getattr(self.query_one(OptionList), f"action_{how}")()

    def action_close(self) -> None:
        self.dismiss(None)
