"""A run's whole record (#14 item 4): its config with where each value was set and the overrides,
what `fbtui show` prints (commit, dirty diff, images, components, commands, artifacts,
evaluations), and what differs from another run (`fbtui diff`: config with origins, code). The
text is the core's own; read-only text areas scroll both ways, and w wraps long lines instead."""

from __future__ import annotations

from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Input, Static, TabbedContent, TabPane, TextArea

from fbtui.errors import FBError
from fbtui.tui.widgets.common import FBScreen

TABS = ("config", "record", "diff")


def config_text(rec: dict[str, object]) -> str:
    """The config as `fbtui show` prints it (each value with where it was set), the overrides first."""
    from fbtui.output import yaml_with_origins

    overrides = rec.get("overrides") or []
    lines = [f"config of run #{rec['run']} (hash {str(rec.get('config_hash') or '')[:12]}, seed aside); "
             "after each value: where it was set",
             "overrides: " + (" ".join(f"-o {o}" for o in overrides) if overrides else "none"), ""]
    lines.append(yaml_with_origins(rec["config"], rec["origins"]))  # type: ignore[arg-type]
    return "\n".join(lines)


def parse_run_number(text: str) -> int | None:
    digits = text.strip().lstrip("#").strip()
    return int(digits) if digits.isdigit() else None


def text_pane(pane_id: str, text: str = "loading…") -> TextArea:
    # Read-only and cursorless: the keys scroll it (both ways: lines are not wrapped until w).
    return TextArea(text, id=pane_id, read_only=True, show_cursor=False, soft_wrap=False, classes="detail-text")


class RunDetailScreen(FBScreen):
    DEFAULT_CSS = """
    RunDetailScreen TabbedContent { height: 1fr; }
    RunDetailScreen TabPane { padding: 0; }
    RunDetailScreen .detail-text, RunDetailScreen .detail-text:focus { height: 1fr; border: none; padding: 0 1; }
    #detail-diff-input { display: none; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        # The tabs' labels carry their keys: the footer keeps its room for the rest.
        Binding("1", "tab('config')", "config", show=False,
                tooltip="the run's config: each value with where it was set, and the overrides"),
        Binding("2", "tab('record')", "record", show=False, tooltip="what `fbtui show` prints: commit, dirty diff, "
                "images, components, stage commands, artifacts, evaluations"),
        Binding("3", "tab('diff')", "diff", show=False, tooltip="what differs from another run (`fbtui diff`)"),
        Binding("d", "ask_diff", "diff against…", tooltip="diff this run against another run: the config keys "
                "that differ with where each side set them, the code between their commits and their dirty diffs"),
        Binding("w", "wrap", "wrap", tooltip="wrap long lines, or scroll them sideways (← →) again"),
    ]

    def __init__(self, run_id: int, *, against: int | None = None, ask_diff: bool = False) -> None:
        super().__init__()
        self.run_id = run_id
        self.against = against
        self.ask_diff = ask_diff and against is None
        self.wrap = False

    def body(self) -> ComposeResult:
        yield Static(f"run #{self.run_id}", id="detail-title", classes="title")
        yield Input(placeholder="diff against run number (enter: diff, esc: cancel)", id="detail-diff-input",
                    restrict=r"#?[0-9]*")
        with TabbedContent(initial="diff" if self.against is not None or self.ask_diff else "config",
                           id="detail-tabs"):
            with TabPane("1 config", id="config"):
                yield text_pane("detail-config")
            with TabPane("2 record", id="record"):
                yield text_pane("detail-record")
            with TabPane("3 diff", id="diff"):
                yield text_pane("detail-diff", "d: diff against another run (its number)")

    def on_mount(self) -> None:
        self.sub_title = f"run #{self.run_id}: detail"
        self.load()
        if self.against is not None:
            self.load_diff(self.against)
        if self.ask_diff:
            self.action_ask_diff()
        else:
            self._focus_tab()

    def _focus_tab(self) -> None:
        tab = self.query_one(TabbedContent).active or "config"
        self.query_one(f"#detail-{tab}", TextArea).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self.query_one("#detail-diff-input", Input).display:
            self._focus_tab()

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        from fbtui.records.show import render, run_record

        store = self.fb.store()
        try:
            if store is None:
                raise FBError("this lab has no runs yet")
            rec = run_record(self.fb.lab, store, self.run_id, with_diff=True)  # the dirty diff at the end
            title = f"run #{self.run_id}  {rec['project']}  {rec['status']}" + (
                f"   {rec['ablation']}: {rec['variant']} seed {rec['seed']}" if rec["variant"] else "")
            texts = (title, config_text(rec), render(rec))
        except FBError as e:
            texts = (f"run #{self.run_id}", e.message, e.message)
        except Exception as e:  # shown, never raised: the app stays up
            texts = (f"run #{self.run_id}", f"{type(e).__name__}: {e}", f"{type(e).__name__}: {e}")
        self.deliver(self._show, *texts)

    def _show(self, title: str, config: str, record: str) -> None:
        self.query_one("#detail-title", Static).update(title)
        self.query_one("#detail-config", TextArea).load_text(config)
        self.query_one("#detail-record", TextArea).load_text(record)

    @work(thread=True, exclusive=True, group="detail-diff")
    def load_diff(self, other: int) -> None:
        from fbtui.records.diff import render, run_diff

        store = self.fb.store()
        try:
            if store is None:
                raise FBError("this lab has no runs yet")
            d = run_diff(self.fb.lab, store, self.run_id, other)
            n = len(d["config"])
            head = (f"run #{self.run_id} against run #{other}: "
                    + (f"{n} config key{'s' if n != 1 else ''} differ" if n else "the same config")
                    + ("; the same code" if d["code"]["same"] else "; different code") + "\n\n")
            text = head + render(d)
        except FBError as e:
            text = e.message
        except Exception as e:  # shown, never raised
            text = f"{type(e).__name__}: {e}"
        self.deliver(self._show_diff, text)

    def _show_diff(self, text: str) -> None:
        self.query_one("#detail-diff", TextArea).load_text(text)

    # ------------------------------------------------------------ keys

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab()

    def action_wrap(self) -> None:
        self.wrap = not self.wrap
        for pane in self.query(".detail-text").results(TextArea):
            pane.soft_wrap = self.wrap

    def action_ask_diff(self) -> None:
        self.query_one(TabbedContent).active = "diff"
        box = self.query_one("#detail-diff-input", Input)
        box.value = ""
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        other = parse_run_number(event.value)
        if other is None:
            self.notify("a run number, e.g. 12", severity="warning")
            return
        self._close_input()
        self.against = other
        self.query_one("#detail-diff", TextArea).load_text(f"diffing run #{self.run_id} against run #{other}…")
        self.load_diff(other)

    def _close_input(self) -> None:
        self.query_one("#detail-diff-input", Input).display = False
        self._focus_tab()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # typing a run number: the digits are text, not tabs
        return not (action in ("tab", "wrap", "ask_diff") and self._asking())

    def _asking(self) -> bool:
        boxes = self.query("#detail-diff-input").results(Input)
        return any(b.display for b in boxes)  # (none before compose)

    def action_back(self) -> None:
        if self._asking():
            self._close_input()
            return
        super().action_back()
