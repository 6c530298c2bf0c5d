"""The run launcher (modal): stages, a variant or a whole ablation, host, overrides. It resolves
every config before launching and shows config errors inline with their file:line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, SelectionList, Static

from fbtui.errors import FBError
from fbtui.tui.app import FBApp, LaunchRequest
from fbtui.tui.widgets.common import deliver
from fbtui.tui.widgets.footer import FBFooter

DEFAULTS = "__defaults__"
# An override per match: quotes and brackets keep their spaces (`name="a b"`, `layers=[1, 2]`), kept
# as typed so YAML reads the value as before.
OVERRIDE = re.compile(r"""(?:"[^"]*"|'[^']*'|\[[^\]]*\]|\{[^}]*\}|[^\s"'\[{])+""")


def split_overrides(text: str) -> list[str]:
    found = OVERRIDE.findall(text)
    if "".join("".join(found).split()) != "".join(text.split()):  # an unclosed quote: split as typed
        return text.split()
    return found


def join_overrides(overrides: list[str]) -> str:
    """The field's text for recorded overrides: one that holds a space is quoted, unless quotes or
    brackets already keep it whole."""
    out = []
    for o in overrides:
        if split_overrides(o) != [o]:
            key, _, value = o.partition("=")
            o = f"{key}={json.dumps(value)}"  # a YAML double-quoted string: the same text
        out.append(o)
    return " ".join(out)


@dataclass
class Clone:
    """A run the launcher starts from (#14 item 10): its variant, seed, host, stages and overrides."""

    run_id: int
    ablation: str | None = None
    variant: str | None = None
    seed: int | None = None
    host: str | None = None
    stages: list[str] | None = None
    overrides: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, run: dict[str, Any]) -> Clone:
        only = run.get("only_stages")
        return cls(run["id"], run.get("ablation"), run.get("variant"), run.get("seed"),
                   run.get("host") or (run.get("requested_host") or "").split(",")[0] or None,
                   only.split(",") if only else None, json.loads(run.get("overrides") or "[]"))


class LauncherScreen(ModalScreen[LaunchRequest | None]):
    # Focused in on_mount without scrolling: Textual's auto focus scrolls to the widget before the
    # modal's layout has settled, and at 80x24 it opened about 1 time in 6 scrolled 3 lines down,
    # the title hidden.
    AUTO_FOCUS = None
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "cancel"),
        Binding("ctrl+s", "launch", "launch", priority=True),
        Binding("enter", "validate", "validate", show=True, tooltip="check every run's config, build nothing"),
    ]

    def __init__(self, project: str, clone: Clone | None = None) -> None:
        super().__init__()
        self.project = project
        self.clone = clone
        self.choices: list[tuple[str, str]] = []  # (label, value)
        self.error = ""

    @property
    def fb(self) -> FBApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        lab = self.fb.lab
        stages: list[str] = []
        try:
            p = lab.project(self.project)
            stages = [s.name for s in p.stages]
            from fbtui.config.resolve import expand

            self.choices = [("the project's own config", DEFAULTS)]
            for a, spec in p.spec.ablations.items():
                variants = expand(lab, p, a)
                names = list(dict.fromkeys(v.name for v in variants))
                self.choices.append((f"ablation {a}: all {len(names)} variants, {len(variants)} runs", f"A:{a}"))
                for n in names:
                    self.choices.append((f"  {a} / {n}" + (" (baseline)" if n == spec.baseline else ""), f"V:{a}:{n}"))
        except FBError as e:
            self.error = e.message
        hosts = list(lab.config.hosts)
        with VerticalScroll(id="launcher"):  # scrolls where the screen is short (80x24)
            yield Static(f"Run {self.project}" + (f": a clone of run #{self.clone.run_id}" if self.clone else ""),
                         classes="title")
            if self.clone:
                yield Static(f"on today's code, edited as you like (`fbtui rerun {self.clone.run_id}` reruns it "
                             "on its recorded code state)", classes="hint")
            yield Label("What")
            yield Select([(label, value) for label, value in self.choices] or [("(none)", DEFAULTS)],
                         value=DEFAULTS, allow_blank=False, id="what")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("Host")
                    yield Select([(h, h) for h in hosts], value=lab.config.defaults.host if
                                 lab.config.defaults.host in hosts else hosts[0], allow_blank=False, id="host")
                with Vertical():
                    yield Label("Seed (optional)")
                    yield Input(placeholder="e.g. 1", id="seed", restrict=r"-?[0-9]*")
                with Vertical():
                    yield Label("Resume")
                    yield Checkbox("only cells not done", id="resume",
                                   tooltip="queue only the variant x seed cells with no succeeded run under "
                                           "today's code and config; failed and cancelled ones run again")
            yield Label("Stages (unticked ones must be cache hits)")
            yield SelectionList[str](*[(s, s, True) for s in stages], id="stages")
            yield Label("Overrides: KEY=VALUE, separated by spaces (values read as YAML)")
            yield Input(placeholder="e.g. train.epochs=3 optim.lr=1e-3", id="overrides")
            yield Static(self.error, id="launch-error")
            yield Static("", id="launch-ok")
            with Horizontal(classes="buttons"):
                yield Button("Validate", id="validate")
                yield Button("Launch", id="launch", variant="primary")
                yield Button("Cancel", id="cancel")
        yield FBFooter()  # the launcher's own keys, not those of the screen below

    def on_mount(self) -> None:
        self.query_one("#what", Select).focus(scroll_visible=False)
        if self.clone is not None:
            self.prefill(self.clone)

    def prefill(self, c: Clone) -> None:
        """The fields as the cloned run had them; what no longer exists is said, not guessed."""
        gone = []
        what = self.query_one("#what", Select)
        if c.variant:
            value = f"V:{c.ablation}:{c.variant}"
            if any(v == value for _, v in self.choices):
                what.value = value
            else:
                gone.append(f"variant {c.variant} of ablation {c.ablation}")
        if c.seed is not None:
            self.query_one("#seed", Input).value = str(c.seed)
        host = self.query_one("#host", Select)
        if c.host in self.fb.lab.config.hosts:
            host.value = c.host
        elif c.host:
            gone.append(f"host {c.host}")
        if c.stages:
            stages = self.query_one("#stages", SelectionList)
            stages.deselect_all()
            for name in c.stages:
                stages.select(name)
        box = self.query_one("#overrides", Input)
        box.value = join_overrides(c.overrides)
        self.call_after_refresh(box.focus)  # what a clone is for: its overrides edited
        if gone:
            self.query_one("#launch-error", Static).update(f"run #{c.run_id}'s {', '.join(gone)} is no longer in "
                                                            "the lab: pick another")

    def request(self) -> LaunchRequest:
        what = self.query_one("#what", Select).value
        req = LaunchRequest(self.project)
        if isinstance(what, str) and what.startswith("A:"):
            req.ablation = what[2:]
        elif isinstance(what, str) and what.startswith("V:"):
            _, req.ablation, req.variant = what.split(":", 2)
        seed = self.query_one("#seed", Input).value.strip()
        req.seed = int(seed) if seed not in ("", "-") else None
        req.hosts = [str(self.query_one("#host", Select).value)]
        picked = list(self.query_one("#stages", SelectionList).selected)
        all_stages = self.query_one("#stages", SelectionList).option_count
        req.stages = picked if len(picked) < all_stages else None
        req.overrides = split_overrides(self.query_one("#overrides", Input).value)
        req.resume = self.query_one("#resume", Checkbox).value
        return req

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "validate":
            self.validate_request(self.request(), launch=False)
        elif event.button.id == "launch":
            self.action_launch()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_validate()  # enter in a field checks, ctrl+s launches

    def action_validate(self) -> None:
        self.validate_request(self.request(), launch=False)

    def action_launch(self) -> None:
        self.validate_request(self.request(), launch=True)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    @work(thread=True, exclusive=True, group="validate")
    def validate_request(self, req: LaunchRequest, launch: bool) -> None:
        """Every check the launch makes (pipeline.launch.validate), without building or recording anything."""
        from fbtui.pipeline.launch import select_variants, validate

        lab = self.fb.lab
        todo = None
        try:
            variants = select_variants(lab, req.project, req.variant, req.ablation, req.seed)
            resolved = validate(lab, req.project, variants=variants, overrides=req.overrides, hosts=req.hosts,
                                stages=req.stages, seed=req.seed)
            store = self.fb.store()
            if req.resume and store is not None:  # what --resume would queue, said before anything is built
                from fbtui.gitstate import capture
                from fbtui.records.resume import plan

                todo = sum(c.run for c in plan(store, req.project, resolved, capture(lab.root).state_hash))
        except FBError as e:
            deliver(self, self.show_result, str(e), None, None)
            return
        except Exception as e:  # anything else is still shown, not raised
            deliver(self, self.show_result, f"{type(e).__name__}: {e}", None, None)
            return
        n = len(variants)
        ok = f"ok: {n} run{'s' if n != 1 else ''} on {', '.join(req.hosts)}"
        if todo is not None:
            ok = f"ok: {todo} of {n} cells to run on {', '.join(req.hosts)} ({n - todo} done under this code, config)"
        deliver(self, self.show_result, "", ok, req if launch else None)

    def show_result(self, error: str, ok: str | None, req: LaunchRequest | None) -> None:
        # The core words overrides as the CLI's -o; here they are the overrides field.
        error = re.sub(r"^-o ", "override ", error).replace("for example -o ", "for example ")
        if ok and self.fb.engine_error:
            if req is not None:  # launching needs the engine: say so instead of "ok"
                error, ok = f"the engine is down ({self.fb.engine_error}): nothing can be built or started now", None
            else:
                ok += "  (but the engine is down: launching needs it)"
        self.query_one("#launch-error", Static).update(error)
        self.query_one("#launch-ok", Static).update(ok or "")
        if error or ok:  # below the fold at 80x24: bring the message and the buttons into view
            self.call_after_refresh(self.query_one(".buttons").scroll_visible, animate=False)
        if req is not None and not error:
            self.dismiss(req)
