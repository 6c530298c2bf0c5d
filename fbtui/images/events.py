"""Build events: plain data that the CLI and the app both render."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class BuildEvent:
    layer: str  # the layer's repository, e.g. fb/proj-digits-mlp
    kind: str  # plan | cached | start | step | log | done | error | transfer | skipped-file
    text: str = ""
    step: int | None = None
    total: int | None = None
    bytes: int | None = None  # context bytes sent, or bytes transferred so far
    seconds: float | None = None
    tag: str | None = None
    lines: list[str] | None = None  # error: the failing step's last lines


EventSink = Callable[[BuildEvent], None]


def ignore(_: BuildEvent) -> None:
    pass
