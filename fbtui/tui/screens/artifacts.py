"""A run's artifacts (#14 item 12): each file its stages made, with its size and hash from the
store. Text and JSON are viewed in place (JSON pretty-printed); other files are opened with the
system's default program (o) or their path copied (y). Files are read as stage outputs: no link is
followed, only regular files are read, and at most VIEW_CAP bytes. A remote stage's files are read
from the copy brought back under .fb/runs/N/STAGE/out; without one, the screen says where they are."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static, TextArea

from fbtui.errors import FBError
from fbtui.output import size_text
from fbtui.tui.widgets.common import FBScreen
from fbtui.tui.widgets.table import Column, FastTable, Row

if TYPE_CHECKING:
    from fbtui.lab import Lab
    from fbtui.store import Store

VIEW_CAP = 4 << 20  # bytes of a file shown in place: past it, the start and a note
SNIFF = 1024  # bytes read to tell text from binary when the suffix does not say
TEXT_SUFFIXES = {".txt", ".log", ".json", ".jsonl", ".yaml", ".yml", ".csv", ".tsv", ".md", ".py", ".toml",
                 ".cfg", ".ini", ".sh", ".html", ".xml", ".tex", ".out", ".err"}


@dataclass
class Artifact:
    stage: str
    path: str  # inside the stage's out folder
    size: int | None
    sha256: str | None
    host: str
    root: Path  # the local folder the file is read from
    where: str = "here"  # here | gone | on HOST | refused (a link, FIFO, device: `why`)
    why: str = ""

    @property
    def here(self) -> bool:
        return self.where == "here"

    def local_path(self) -> Path:
        return self.root / self.path


def artifacts_of(lab: Lab, store: Store, run_id: int) -> list[Artifact]:
    """The run's recorded artifacts, each checked (without following links) against its local copy."""
    from fbtui.pipeline.outputs import UnsafeOutput, output_kind
    from fbtui.pipeline.supervisor import run_folder

    store.run(run_id)  # a run that is not there says so
    hosts = {s["name"]: s["host"] for s in store.stages(run_id)}
    out = []
    for a in store.query("SELECT stage, path, size, sha256, host FROM artifacts WHERE run_id = ? ORDER BY id",
                         (run_id,)):
        host = a["host"] or hosts.get(a["stage"]) or "local"
        root = run_folder(lab, run_id) / a["stage"] / "out"
        art = Artifact(a["stage"], a["path"], a["size"], a["sha256"], host, root)
        try:
            kind = output_kind(art.root, art.path) if art.root.is_dir() else None
        except (UnsafeOutput, OSError) as e:
            art.where, art.why = "refused", getattr(e, "message", None) or str(e)
        else:
            if kind is None:  # a remote stage's file too large to copy back stays in its volume
                art.where = "gone" if host == "local" else f"on {host}"
            elif kind != "file":
                art.where, art.why = "refused", f"{art.path} is a {kind}"
        out.append(art)
    return out


def is_text(path: str, head: bytes) -> bool:
    if Path(path).suffix.lower() in TEXT_SUFFIXES:
        return True
    if b"\0" in head:
        return False
    try:  # (a character cut at the end of the sniff is fine)
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def view_text(art: Artifact) -> tuple[str | None, str]:
    """(the text to show, a line about it); text None: not viewable here, the line says why."""
    from fbtui.pipeline.outputs import read_output

    if not art.here:
        return None, _not_here(art)
    data = read_output(art.root, art.path, cap=VIEW_CAP + 1)  # raises UnsafeOutput for a link
    if data is None:
        return None, f"{art.path} is gone from {art.root}"
    if not is_text(art.path, data[:SNIFF]):
        return None, f"{art.path} is not text: o opens it with the system's default program, y copies its path"
    cut = len(data) > VIEW_CAP
    text = data[:VIEW_CAP].decode(errors="replace")
    note = f"{art.path} ({art.stage}), {len(data) if not cut else art.size or len(data):,} bytes"
    if cut:
        return text, note + f": its first {VIEW_CAP >> 20} MiB (o opens it whole)"
    if art.path.lower().endswith(".json") or text.lstrip()[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False), note + ", JSON pretty-printed"
        except ValueError:
            pass
    return text, note


def _not_here(art: Artifact) -> str:
    if art.where.startswith("on "):
        return (f"{art.path} lives on host {art.host}, in stage {art.stage}'s volume: no copy was brought back "
                "(larger than the supervisor's copy_back_limit)")
    if art.where == "gone":
        return f"{art.path} is no longer in {art.root} (deleted or cleaned up)"
    return f"{art.path} is refused: {art.why}"


def open_command() -> list[str] | None:
    """The system's opener where a display is there to show what it opens (None over plain ssh)."""
    if sys.platform == "darwin":
        return ["open"] if not os.environ.get("SSH_CONNECTION") else None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None
    return ["xdg-open"] if shutil.which("xdg-open") else None


class ArtifactsScreen(FBScreen):
    DEFAULT_CSS = """
    #artifacts-view, #artifacts-view:focus { height: 1fr; border: none; padding: 0 1; display: none; }
    #artifacts { height: 1fr; }
    #artifacts-status { height: auto; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "view", "view", tooltip="show a text or JSON file here (JSON pretty-printed)"),
        Binding("o", "open", "open", tooltip="open the file with the system's default program (needs a display)"),
        Binding("y", "copy_path", "copy path", tooltip="copy the file's path to the clipboard"),
        Binding("w", "wrap", "wrap", show=False, tooltip="wrap the viewed file's long lines, or scroll them (← →)"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.items: list[Artifact] = []
        self.viewing: Artifact | None = None

    def body(self) -> ComposeResult:
        yield Static(f"Artifacts of run #{self.run_id}", classes="title")
        yield FastTable(id="artifacts", empty="loading…")
        yield TextArea("", id="artifacts-view", read_only=True, show_cursor=False, soft_wrap=False)
        yield Static("", id="artifacts-status", classes="hint")

    def on_mount(self) -> None:
        self.sub_title = f"run #{self.run_id}: artifacts"
        self.query_one(FastTable).focus()
        self.load()

    @work(thread=True, exclusive=True, group="artifacts")
    def load(self) -> None:
        store = self.fb.store()
        try:
            items = artifacts_of(self.fb.lab, store, self.run_id) if store is not None else []
        except FBError as e:
            self.deliver(self._status, e.message)
            return
        self.deliver(self.show, items)

    def show(self, items: list[Artifact]) -> None:
        self.items = items
        cols = [Column("stage", "STAGE"), Column("path", "PATH", max_width=48), Column("size", "SIZE", align="right"),
                Column("sha", "SHA256"), Column("where", "WHERE", max_width=16)]
        rows = [Row(i, [a.stage, a.path, size_text(a.size), (a.sha256 or "-")[:12], a.where],
                    [a.stage, a.path, a.size or 0, a.sha256 or "", a.where]) for i, a in enumerate(items)]
        table = self.query_one(FastTable)
        table.empty = "this run recorded no artifacts"
        table.set_data(cols, rows)
        far = sum(1 for a in items if not a.here)
        self._status(f"{len(items)} file{'s' if len(items) != 1 else ''}" + (f" ({far} not here)" if far else "")
                     + "  ·  enter views text and JSON  ·  o opens  ·  y copies the path")

    def _status(self, text: str) -> None:
        self.query_one("#artifacts-status", Static).update(text)

    def _current(self) -> Artifact | None:
        if self.viewing is not None:
            return self.viewing
        key = self.query_one(FastTable).cursor_key
        return self.items[key] if isinstance(key, int) and key < len(self.items) else None

    # ------------------------------------------------------------ keys

    def on_fast_table_selected(self, event: FastTable.Selected) -> None:
        self.action_view()

    def action_view(self) -> None:
        art = self._current()
        if art is not None and self.viewing is None:
            self.read(art)

    @work(thread=True, exclusive=True, group="artifact-read")
    def read(self, art: Artifact) -> None:
        try:
            text, note = view_text(art)
        except FBError as e:  # a link, FIFO or device where a file was recorded
            text, note = None, f"{art.path} is refused: {e.message}"
        except OSError as e:
            text, note = None, f"{art.path} cannot be read: {e.strerror or e}"
        self.deliver(self._viewed, art, text, note)

    def _viewed(self, art: Artifact, text: str | None, note: str) -> None:
        if text is None:
            self._status(note)
            self.notify(note, severity="warning")
            return
        self.viewing = art
        view = self.query_one("#artifacts-view", TextArea)
        view.load_text(text)
        view.display = True
        self.query_one(FastTable).display = False
        view.focus()
        self._status(note + "  ·  esc: back to the list")
        self.refresh_bindings()

    def action_wrap(self) -> None:
        view = self.query_one("#artifacts-view", TextArea)
        view.soft_wrap = not view.soft_wrap

    def action_open(self) -> None:
        art = self._current()
        if art is not None:
            self.open_file(art)

    @work(thread=True, group="artifact-open")
    def open_file(self, art: Artifact) -> None:
        from fbtui.pipeline.outputs import output_kind

        command = open_command()
        try:
            if not art.here:
                note = _not_here(art)
            elif command is None:
                note = "no display here to open it on (over ssh?): y copies its path"
            elif output_kind(art.root, art.path) != "file":  # checked again: never hand a link to the opener
                note = f"{art.path} is no longer a file"
            else:
                subprocess.Popen([*command, str(art.local_path())], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                note = f"opened {art.path} with {command[0]}"
        except FBError as e:
            note = f"{art.path} is refused: {e.message}"
        except OSError as e:
            note = f"{command[0] if command else 'the opener'} failed: {e.strerror or e}"
        self.app.call_from_thread(self.app.notify, note)

    def action_copy_path(self) -> None:
        art = self._current()
        if art is None:
            return
        if not art.here:
            self.notify(_not_here(art), severity="warning")
            return
        path = str(art.local_path())
        self.app.copy_to_clipboard(path)  # OSC 52 through the driver (Textual keeps it as app.clipboard too)
        self.notify(f"copied the path: {path}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "wrap":
            return self.viewing is not None
        if action == "view":
            return self.viewing is None
        return True

    def action_back(self) -> None:
        if self.viewing is not None:  # esc over a file: back to the list
            self.viewing = None
            self.query_one("#artifacts-view", TextArea).display = False
            table = self.query_one(FastTable)
            table.display = True
            table.focus()
            self.show(self.items)
            self.refresh_bindings()
            return
        super().action_back()
