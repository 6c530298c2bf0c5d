"""Opening the store file, and what goes wrong doing it, as one line that says what to do.

A command that only reads opens the file read-only (`mode=ro`): a store a person may read but not
write (another user's lab, a read-only mount) still lists, shows and compares, and nothing is ever
created for it: not the file, not its folder."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.errors import FBError

if TYPE_CHECKING:
    from fbtui.store.store import Store

BUSY_TIMEOUT_S = 60.0
WAIT_NOTICE_S = 1.0  # a writer waiting longer than this for the lock says so
WAITING = "waiting for the store (locked by another fbtui process) ..."


class StoreError(FBError):
    pass


def timeout_s() -> float:
    """How long a writer waits for another one: FB_STORE_TIMEOUT seconds, else a minute."""
    try:
        value = float(os.environ.get("FB_STORE_TIMEOUT", ""))
    except ValueError:
        return BUSY_TIMEOUT_S
    return value if 0 < value <= 86_400 else BUSY_TIMEOUT_S  # NaN fails both comparisons


def check_path(path: Path, *, create: bool) -> None:
    """Refuse a store path that cannot hold a SQLite file (a folder, a FIFO, a path under a file);
    with `create`, make the folder it goes in."""
    if path.is_dir():
        raise StoreError(f"the store path {path} is a folder, not a file",
                         hint="set store: in lab.yaml to a file such as .fb/fb.db (store: '' names the lab folder)")
    if path.exists() and not path.is_file():  # a FIFO would block the open forever
        raise StoreError(f"the store path {path} is not a regular file",
                         hint="move it aside, or set store: in lab.yaml to another file")
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise StoreError(f"the store {path} cannot be made: {parent} is a file, not a folder",
                                 hint="set store: in lab.yaml to a path whose folders are folders")
            break
    if create and not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the store's folder {path.parent}: {e.strerror or e}",
                             hint="make that folder writable, or set store: in lab.yaml to a writable place") from None
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise StoreError(f"cannot create the store {path}: its folder is read-only here",
                             hint="make that folder writable for you, or set store: in lab.yaml to a writable place")


FULL_BELOW = 256 * 1024  # bytes free under which the store's disk counts as full: SQLite cannot grow its files


def free_bytes(path: Path) -> int | None:
    """Bytes this process may still write on the disk that holds `path` (None: not known)."""
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return None
    return (st.f_bfree if os.geteuid() == 0 else st.f_bavail) * st.f_frsize  # root may use the reserve


def disk_full(path: Path) -> bool:
    free = free_bytes(path)
    return free is not None and free < FULL_BELOW


def writable(path: Path) -> bool:
    """Whether this process may write the store: the file and its folder (SQLite puts its -wal and
    -shm files beside it). os.access sees what the kernel allows: a read-only mount or an immutable
    file refuses root too."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def read_only_error(path: Path | None) -> StoreError:
    where = f"the store {path}" if path else "the store"
    return StoreError(f"{where} is read-only here: commands that read it (ls, ps, logs, show, compare) work, "
                      "this one writes",
                      hint=f"make {path or 'it'} and its folder writable for you, or run as the lab's owner")


def connect(path: Path, *, read_only: bool, timeout: float) -> sqlite3.Connection:
    """A connection for a Store. One for reading never creates the file; what it leaves beside the
    file matters too: a read-only connection cannot remove the -wal and -shm it makes, and ones
    another user left there (theirs, mode 0644) would stop the owner's writes."""
    # isolation_level=None: we open transactions ourselves (BEGIN IMMEDIATE), so a writer
    # never has to upgrade a read lock, the one case busy_timeout cannot wait out.
    def open_(target: str, uri: bool = False) -> sqlite3.Connection:
        return sqlite3.connect(target, uri=uri, timeout=timeout, isolation_level=None, check_same_thread=False)

    if not read_only:
        return open_(str(path))
    uri = path.absolute().as_uri()
    if writable(path):  # ours: a plain connection (the Store never writes through it) tidies up on close
        conn = open_(f"{uri}?mode=rw", True)
        return _on_full_disk(conn, path, lambda: open_(f"{uri}?mode=ro&immutable=1", True)) if disk_full(path) \
            else conn
    if Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists():  # a writer is at work: share its WAL
        conn = open_(f"{uri}?mode=ro", True)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as e:
            conn.close()
            if not getattr(e, "sqlite_errorname", "").startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
                raise
    # Not ours and nobody writing it now: read the file as it is, making nothing beside it.
    return open_(f"{uri}?mode=ro&immutable=1", True)


def _on_full_disk(conn: sqlite3.Connection, path: Path, immutable: Callable[[], sqlite3.Connection]
                  ) -> sqlite3.Connection:
    """A reader on a full disk: SQLite cannot make the -shm a WAL reader needs unless a writer made
    it already. With no WAL to read, the file alone is the whole store: it is read immutable."""
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    wal = Path(f"{path}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise StoreError(f"the store {path} cannot be read now: its disk is full, and its newest changes are in "
                         f"{wal.name}, which SQLite needs some free space to read",
                         hint=f"free some space on the disk of {path.parent} and try again (nothing is lost)")
    return immutable()


def is_locked(e: sqlite3.Error) -> bool:
    return getattr(e, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(e)


def store_error(e: sqlite3.Error, path: Path | None) -> StoreError:
    """A SQLite failure as one line naming the store and what to do about it."""
    name, text = getattr(e, "sqlite_errorname", "") or "", str(e)
    where = f"the store {path}" if path else "the store"
    aside = f"mv {path} {path}.bad" if path else "move the store file aside"
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return StoreError(f"{where} is not a SQLite database ({text})",
                          hint=f"{aside} (the next run starts a new store), or point lab.yaml's store: at the "
                               "right file")
    if is_locked(e):
        return StoreError(f"{where} stayed locked by another process for {timeout_s():g} s",
                          hint="another fbtui is writing it (fbtui ps lists runs); try again, or wait longer "
                               "with FB_STORE_TIMEOUT=SECONDS")
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return read_only_error(path)
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return StoreError(f"{where} is damaged ({text})",
                          hint=f"restore a backup, or {aside} (the next run starts a new store)")
    if name.startswith("SQLITE_FULL") or "disk is full" in text or (
            path is not None and (name.startswith("SQLITE_IOERR") or "I/O error" in text) and disk_full(path)):
        return StoreError(f"{where} could not be written: the disk is full",
                          hint="free some space on its disk and try again (running stages keep their metric points "
                               "and catch up: nothing is lost)")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(f"cannot open {where} ({text})",
                          hint="check that the file and its folder exist and are readable for you")
    return StoreError(f"{where} could not be used ({text})", hint="fbtui doctor checks the store")


def open_to_read(path: Path, on_wait: Callable[[], None] | None = None) -> Store:
    """The store as a command that only reads opens it: read-only, unless its schema is older than
    this fbtui's and we may write it (then it is upgraded first, as any command would)."""
    from fbtui.store.migrations import LATEST
    from fbtui.store.store import Store

    store = Store(path, read_only=True)
    version = store.schema_version
    if version >= LATEST:
        return store
    store.close()
    if not writable(path):
        raise StoreError(f"the store {path} has schema v{version}, older than this fbtui's (v{LATEST}), and is "
                         "read-only here", hint="let its owner run any fbtui command once (that upgrades it), "
                                                "or use the fbtui that wrote it")
    Store(path, on_wait=on_wait).close()
    return Store(path, read_only=True)
