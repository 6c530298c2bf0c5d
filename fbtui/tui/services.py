"""What the app does with the terminal beyond drawing (#14 items 8 and 9): the clipboard (OSC 52,
refused over what terminals take) and the end of a watched run announced once, as a toast, the bell
and a desktop notification. Escape sequences go through Textual's driver, which owns the screen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from fbtui.errors import FBError
from fbtui.tui import data

if TYPE_CHECKING:
    from textual.app import App

    from fbtui.store import Store

    _Base = App[None]
else:
    _Base = object


class TerminalServices(_Base):
    """Mixed into FBApp: it sets `watched` and `announced` and calls `_check_watched` on a timer."""

    watched: dict[int, str | None]  # run -> its status when last read (None: not read yet)
    announced: set[int]

    if TYPE_CHECKING:
        def store(self) -> Store | None: ...  # FBApp's

    def write_escape(self, seq: str) -> bool:
        """An escape sequence for the terminal, through the driver that owns the screen (written to
        /dev/tty beside it, it could land inside one of Textual's frames)."""
        if not seq or self.is_headless or self._driver is None:
            return False
        self._driver.write(seq)
        return True

    def copy_text(self, text: str, what: str) -> bool:
        """Put `text` on the clipboard (OSC 52), or say why not: terminals cap what they take."""
        from fbtui.terminal import MAX_CLIPBOARD

        size = len(text.encode())
        if size > MAX_CLIPBOARD:
            self.notify(f"{what} not copied: {size:,} bytes is more than a terminal takes on its clipboard "
                        f"({MAX_CLIPBOARD:,}); export it to a file instead", severity="warning", timeout=8)
            return False
        self.copy_to_clipboard(text)
        lines = text.count("\n") + (not text.endswith("\n"))
        shown = text if lines == 1 and len(text) <= 60 else f"{lines} line{'s' if lines != 1 else ''}"
        self.notify(f"copied {what}: {shown}")
        return True

    def announce_end_of(self, run_id: int, status: str | None = None) -> None:
        """Announce this run's end (`status`: what it is now, when known, so an end before the
        first check still counts)."""
        if run_id not in self.announced and self.watched.get(run_id) is None:
            self.watched[run_id] = status

    def _check_watched(self) -> None:
        if self.watched and not any(w.group == "watch-runs" and not w.is_finished for w in self.workers):
            self._watch_worker(dict(self.watched))

    @work(thread=True, exclusive=True, group="watch-runs")
    def _watch_worker(self, before: dict[int, str | None]) -> None:
        store = self.store()
        if store is None:
            return
        try:
            rows = store.query(f"SELECT id, project, status, reason, eval_of FROM runs WHERE id IN "
                               f"({','.join('?' * len(before))})", list(before))
        except FBError:
            return  # the store is busy or gone for a moment: the next check reads it
        self.call_from_thread(self._runs_seen, before, {r["id"]: r for r in rows})

    def _runs_seen(self, before: dict[int, str | None], rows: dict[int, dict[str, Any]]) -> None:
        for rid, last in before.items():
            if rid not in self.watched or rid in self.announced:
                continue
            r = rows.get(rid)
            if r is not None and r["status"] in data.ACTIVE:
                self.watched[rid] = r["status"]
                continue
            del self.watched[rid]  # deleted, or ended: watched no more
            if r is not None and last is not None:  # (one that had ended before it was watched is no news)
                self.announced.add(rid)
                self._announce(r)

    def _announce(self, r: dict[str, Any]) -> None:
        """A toast, the bell and a desktop notification where the terminal shows one: once per run."""
        from fbtui.terminal import BEL, notify

        status = r["status"]
        what = f"run #{r['id']} {r['project']}" + (f" (evaluates #{r['eval_of']} again)" if r["eval_of"] else "")
        reason = (r["reason"] or "").splitlines()[0] if r["reason"] and status != "succeeded" else ""
        body = f"{status}" + (f": {reason}" if reason else "")
        severity = {"succeeded": "information", "cancelled": "warning"}.get(status, "error")
        self.notify(f"{what} {body}", title="run ended", severity=severity, timeout=10)  # type: ignore[arg-type]
        self.bell()
        self.write_escape(notify(f"fbtui: run #{r['id']} {status}", f"{r['project']}"
                                 + (f": {reason}" if reason else "")).removeprefix(BEL))
