"""The stores on this machine: a list every store adds itself to, so that one checkout's `fbtui gc`
can see the images other checkouts' stores built or used and leave them alone."""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path


def state_dir() -> Path:
    """Where fbtui keeps this user's machine-wide state: the stores list, crash reports."""
    base = os.environ.get("FB_STATE_DIR") or os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local/state")
    return Path(base) / "fbtui"


def registry_path() -> Path:
    return state_dir() / "stores.txt"


def write_crash_log(text: str) -> Path | None:
    """Keep an unexpected error's traceback in a new file under the state folder (or the temp
    folder when that cannot be written); None when neither can be."""
    import tempfile
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder, prefix in ((state_dir(), "crash-"), (Path(tempfile.gettempdir()), "fbtui-crash-")):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"{prefix}{stamp}-", suffix=".log", dir=folder)  # mode 0600
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return Path(name)
        except OSError:
            continue
    return None


def register(store: Path) -> None:
    """Add a store's path to the machine's list (once). Best effort: never stops a command."""
    try:
        path = registry_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        me = str(store.resolve())
        with path.open("a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            if me not in f.read().splitlines():
                f.write(me + "\n")
    except OSError:
        pass



def report_unexpected(error: BaseException, argv: list[str] | None = None) -> str:
    """The one line a person sees for an error fbtui did not expect; its traceback goes to a
    crash log (named in the line)."""
    import sys
    import traceback

    from fbtui import __version__

    text = (f"fbtui {__version__}, python {sys.version.split()[0]}\nargv: {argv if argv is not None else sys.argv}\n\n"
            + "".join(traceback.format_exception(error)))
    path = write_crash_log(text)
    where = f"details in {path}" if path else "no crash log could be written"
    what = (str(error).strip().splitlines() or [""])[0][:300]
    return f"unexpected {type(error).__name__}{': ' + what if what else ''} ({where}; please report it)"

def other_stores(mine: Path) -> list[Path]:
    """Every other registered store that still exists."""
    try:
        lines = registry_path().read_text().splitlines()
    except OSError:
        return []
    me = str(mine.resolve())
    return [Path(x) for x in dict.fromkeys(lines) if x and x != me and Path(x).is_file()]


def images_recorded(store: Path) -> set[str]:
    """Image tags and IDs a store built or its runs used, read without writing to it."""
    out: set[str] = set()
    from fbtui.store.opening import connect

    try:  # as a reading command opens a store: nothing is left beside another checkout's file
        conn = connect(store, read_only=True, timeout=5)
    except sqlite3.Error:
        return out
    try:
        for sql in ("SELECT tag, digest FROM images", "SELECT image, NULL FROM runs", "SELECT image, NULL FROM stages"):
            try:
                for a, b in conn.execute(sql):
                    out.update(x for x in (a, b) if x)
            except sqlite3.Error:
                continue
        try:
            import json

            for (layers,) in conn.execute("SELECT layers FROM runs WHERE layers IS NOT NULL"):
                for x in json.loads(layers):
                    out.update(v for v in (x.get("tag"), x.get("id")) if v)
        except (sqlite3.Error, ValueError):
            pass
    finally:
        conn.close()
    return out
