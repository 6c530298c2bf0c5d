"""The app's stores: one SQLite connection per thread. No Textual here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.errors import FBError

if TYPE_CHECKING:
    from fbtui.store import Store


class Stores:
    """One Store per thread: workers never share a connection with each other.

    Closing never touches a connection another thread may be using: closing a SQLite connection
    while a worker runs a query on it crashed the interpreter (a segfault seen in CI when the app
    quit during a poll). A worker's connection is closed when that thread or this object goes."""

    def __init__(self, path: Path, on_problem: Callable[[str | None], None] | None = None) -> None:
        self.path = path
        self.on_problem = on_problem  # told (in the thread that found it) when `problem` comes or goes
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, Store]] = []
        self._lock = threading.Lock()
        self.closed = False
        self.problem: FBError | None = None  # why the store cannot be used (shown when launching)

    def _open(self) -> Store:
        from fbtui.store import Store
        from fbtui.store.opening import disk_full, open_to_read, writable

        # A store this user may only read is opened read-only: the app shows it, launching says why not.
        try:
            s = Store(self.path) if not self.path.exists() or writable(self.path) else open_to_read(self.path)
        except FBError:
            if not (self.path.exists() and disk_full(self.path)):
                raise
            s = open_to_read(self.path)  # a full disk: the app still shows the runs; launching retries
        self._local.store = s
        with self._lock:
            self._all.append((threading.current_thread(), s))
        return s

    def get(self) -> Store | None:
        """This thread's store, or None when the lab has no store yet (nothing was ever run), it
        cannot be opened (`problem` says why: the screens show no runs, never crash) or the app is
        closing."""
        s = getattr(self._local, "store", None)
        if s is None:
            if self.closed or not self.path.exists():
                return None
            try:
                s = self._open()
            except FBError as e:
                self._problem(e)
                return None
            if self.problem is not None:
                self._problem(None)
        return s

    def _problem(self, e: FBError | None) -> None:
        said = str(self.problem) if self.problem is not None else None
        self.problem = e
        if self.on_problem is not None and (str(e) if e is not None else None) != said:
            self.on_problem(str(e) if e is not None else None)

    def create(self) -> Store:
        """This thread's store, creating the file when needed (launching); raises FBError when the
        store cannot be written."""
        from fbtui.store.opening import read_only_error, writable

        if getattr(self._local, "store", None) is None and not self.path.exists():
            self._open()
        s = self.get()
        if s is None:
            raise self.problem or FBError("the app is closing")
        if s.read_only and writable(self.path):  # opened read-only while its disk was full: try writing again
            from fbtui.store import Store

            fresh = Store(self.path)  # raises the store's own line while the disk is still full
            self._local.store = fresh
            with self._lock:
                self._all = [(t, x) for t, x in self._all if x is not s] + [(threading.current_thread(), fresh)]
            s.close()
            return fresh
        if s.read_only:
            raise read_only_error(self.path)
        return s

    def close(self) -> None:
        """Close this thread's connection and those of threads that have ended; forget the rest."""
        self.closed = True
        with self._lock:
            mine, self._all = self._all, []
        here = threading.current_thread()
        for thread, s in mine:
            if thread is here or not thread.is_alive():
                try:
                    s.close()
                except Exception:
                    pass
