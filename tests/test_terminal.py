"""Bell, desktop notifications and the clipboard as terminal escape sequences (#14, items 8-9)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time

import pytest

from fbtui.terminal import MAX_CLIPBOARD, clipboard, notification_kind, notify


@pytest.mark.parametrize(("env", "kind", "seq"), [
    ({"TERM_PROGRAM": "iTerm.app"}, "osc9", "\x1b]9;fbtui: digits: run #3 succeeded\x07"),
    ({"TERM": "xterm-kitty"}, "osc99", "\x1b]99;;fbtui: digits: run #3 succeeded\x1b\\"),
    ({"VTE_VERSION": "7600", "TERM": "xterm-256color"}, "osc777",
     "\x1b]777;notify;fbtui: digits;run #3 succeeded\x07"),
    ({"TERM": "xterm-256color"}, None, ""),
])
def test_each_terminal_gets_the_notification_it_shows(env: dict[str, str], kind: str | None, seq: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    assert notification_kind(env) == kind
    assert notify("fbtui: digits", "run #3 succeeded", env) == "\a" + seq


def test_text_cannot_smuggle_escape_sequences_and_tmux_passes_them_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    out = notify("x\x1b]52;c;AAAA\x07", "y;z", {"VTE_VERSION": "1"})
    assert out.startswith("\a\x1bPtmux;\x1b\x1b]777;notify;") and out.endswith("\x1b\\")
    assert "\x1b]52" not in out.replace("\x1b\x1b", "")  # the injected sequence lost its ESC and BEL
    copied = clipboard("run #12 0.973")
    assert base64.b64decode(copied.split(";c;")[1].split("\x07")[0]) == b"run #12 0.973"
    with pytest.raises(ValueError, match="export to a file instead"):
        clipboard("x" * (MAX_CLIPBOARD + 1))


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_the_bell_reaches_a_real_terminal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    session = f"fbbell{time.time_ns()}"
    code = "from fbtui.terminal import notify, write_to_terminal; print(write_to_terminal(notify('t', 'b')))"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24"], check=True)
    try:
        subprocess.run(["tmux", "new-window", "-d", "-t", session, f"{sys.executable} -c \"{code}\"; sleep 5"],
                       check=True)
        deadline = time.monotonic() + 20
        flags = ""
        while time.monotonic() < deadline:
            flags = subprocess.run(["tmux", "list-windows", "-t", session, "-F", "#{window_bell_flag}"],
                                   capture_output=True, text=True).stdout
            if "1" in flags:
                break
            time.sleep(0.2)
        assert "1" in flags  # tmux saw the bell in the window the notification was written to
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
