"""What a terminal can do beyond text (#14, items 8 and 9): ring, show a desktop notification,
put text on the clipboard. All are escape sequences the terminal interprets, so they work over
ssh and in tmux (passed through) with nothing installed; a terminal that knows none of them ignores
them. Core: the app and the CLI write what these return."""

from __future__ import annotations

import base64
import os
import re

BEL = "\a"
MAX_CLIPBOARD = 100_000  # bytes of text: terminals cap OSC 52 (xterm at ~100 KB)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean(text: str, limit: int = 200) -> str:
    return _CONTROL.sub(" ", text)[:limit]


def _wrap(seq: str) -> str:
    """Inside tmux an escape sequence reaches the outer terminal only wrapped (allow-passthrough on)."""
    if os.environ.get("TMUX"):
        return "\x1bPtmux;" + seq.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return seq


def notification_kind(env: dict[str, str] | None = None) -> str | None:
    """Which desktop-notification sequence this terminal takes: "osc9" (iTerm2, WezTerm, ghostty,
    Windows Terminal), "osc99" (kitty), "osc777" (VTE terminals such as GNOME Terminal, foot,
    urxvt), or None (unknown: the bell alone)."""
    env = dict(os.environ) if env is None else env
    program = env.get("TERM_PROGRAM", "")
    term = env.get("TERM", "")
    if program in ("iTerm.app", "WezTerm", "ghostty") or env.get("WT_SESSION"):
        return "osc9"
    if term == "xterm-kitty" or env.get("KITTY_WINDOW_ID"):
        return "osc99"
    if env.get("VTE_VERSION") or term.startswith(("foot", "rxvt")):
        return "osc777"
    return None


def notify(title: str, body: str, env: dict[str, str] | None = None) -> str:
    """The bell, and a desktop notification where the terminal shows one."""
    title, body = _clean(title, 80), _clean(body)
    kind = notification_kind(env)
    if kind == "osc9":
        seq = f"\x1b]9;{title}: {body}\x07"
    elif kind == "osc99":
        seq = f"\x1b]99;;{title}: {body}\x1b\\"
    elif kind == "osc777":
        seq = f"\x1b]777;notify;{title.replace(';', ',')};{body.replace(';', ',')}\x07"
    else:
        seq = ""
    return BEL + (_wrap(seq) if seq else "")


def clipboard(text: str) -> str:
    """OSC 52: the terminal puts `text` on the system clipboard (over ssh too)."""
    data = text.encode()
    if len(data) > MAX_CLIPBOARD:
        raise ValueError(f"{len(data):,} bytes is more than a terminal takes on its clipboard "
                         f"({MAX_CLIPBOARD:,}): export to a file instead")
    return _wrap("\x1b]52;c;" + base64.b64encode(data).decode() + "\x07")


def write_to_terminal(seq: str) -> bool:
    """Write to the controlling terminal (not stdout: that may be a pipe); False when there is none."""
    try:
        with open("/dev/tty", "w") as tty:
            tty.write(seq)
            tty.flush()
        return True
    except OSError:
        return False
