"""Terminal rendering of build events for the CLI: a progress bar per layer and the log's tail on a
terminal; plain lines (steps, cache hits, transfers) when the output is a file or a pipe."""

from __future__ import annotations

import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import TextIO

from fbtui.images.events import BuildEvent

BAR = 20


@dataclass
class _LayerState:
    status: str = "waiting"
    step: int = 0
    total: int = 0
    text: str = ""
    done: int | None = None  # bytes moved, for transfers
    size: int | None = None


class BuildProgress:
    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None, verbose: bool = False,
                 tail: int = 6) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.verbose = verbose
        self.layers: dict[str, _LayerState] = {}
        self.tail: deque[str] = deque(maxlen=tail)
        self._drawn = 0
        self._last_draw = 0.0
        self._last_transfer_print = 0.0

    def __call__(self, e: BuildEvent) -> None:
        st = self.layers.setdefault(e.layer, _LayerState())
        if e.kind == "cached":
            st.status, st.text = "present", e.text
        elif e.kind == "start":
            st.status, st.text, st.size = "building", e.text, e.total
        elif e.kind == "step":
            st.step, st.total, st.text = e.step or 0, e.total or 0, e.text
        elif e.kind == "transfer":
            st.status, st.done, st.size, st.text = "shipping", e.bytes, e.total, e.text
        elif e.kind == "done":
            st.status, st.text = "done", e.text + (f" ({e.seconds:.1f} s)" if e.seconds is not None else "")
            st.step = st.total
        elif e.kind == "error":
            st.status, st.text = "failed", e.text
        elif e.kind == "log":
            self.tail.append(e.text)
        if self.tty:
            urgent = e.kind in ("step", "done", "error", "cached", "start")
            if urgent or time.monotonic() - self._last_draw > 0.05:
                self._draw()
        else:
            self._plain(e, st)

    # ------------------------------------------------------------ plain output

    def _plain(self, e: BuildEvent, st: _LayerState) -> None:
        line = None
        if e.kind == "cached":
            line = f"{e.layer}: present ({e.text})"
        elif e.kind == "start":
            line = f"{e.layer}: {e.text}" + (f", context {e.bytes / 1e3:.1f} kB" if e.bytes else "")
        elif e.kind == "step":
            line = f"{e.layer}: step {e.step}/{e.total} {e.text}"
        elif e.kind == "transfer" and time.monotonic() - self._last_transfer_print > 2:
            self._last_transfer_print = time.monotonic()
            line = f"{e.layer}: {(e.bytes or 0) / 1e6:.0f}/{(e.total or 0) / 1e6:.0f} MB at {e.text}"
        elif e.kind == "done":
            line = f"{e.layer}: done {st.text}"
        elif e.kind == "skipped-file":
            line = f"{e.layer}: warning: {e.text}"
        elif e.kind == "log" and self.verbose:
            line = f"    | {e.text}"
        if line:
            print(line, file=self.out, flush=True)

    # ------------------------------------------------------------ terminal output

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        lines = []
        for name, st in self.layers.items():
            if st.status == "shipping" and st.size:
                frac = (st.done or 0) / st.size
                info = f"{(st.done or 0) / 1e6:.0f}/{st.size / 1e6:.0f} MB {st.text}"
            else:
                frac = st.step / st.total if st.total else (1.0 if st.status in ("present", "done") else 0.0)
                info = f"{st.step}/{st.total} {st.text}" if st.status == "building" else f"{st.status} {st.text}"
            filled = int(frac * BAR)
            lines.append(f"{name:<24} [{'#' * filled}{'-' * (BAR - filled)}] {info}"[:width - 1])
        lines += [f"  \x1b[2m{t}\x1b[0m"[: width + 7] for t in self.tail]
        buf = ["\x1b[1A\x1b[2K"] * self._drawn + ["\r"]
        buf += [line + "\n" for line in lines]
        self.out.write("".join(buf))
        self.out.flush()
        self._drawn = len(lines)
        self._last_draw = time.monotonic()

    def finish(self) -> None:
        if self.tty:
            self._draw()
