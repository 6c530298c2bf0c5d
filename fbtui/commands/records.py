"""Records."""

from typing import Any


def add_parsers(sub: Any, cmd: Any) -> None:
    pass
