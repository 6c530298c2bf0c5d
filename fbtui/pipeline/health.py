"""Whether each host answers, as one clock per host that every call to it feeds.

A host that fails a call (placing, starting, following, ingesting, concluding) starts its clock;
any call that succeeds stops it. Only past the host's grace period (`grace:` in lab.yaml, 30 s by
default) are its stages declared lost and runs that have not started there sent back to the queue:
a dockerd restart (a few seconds), a reopened ssh tunnel or a stalled API must not cost a run.
While a host is down, a background probe asks it every few seconds, so the supervisor's loop never
waits on it and notices at once when it answers again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

GRACE_DEFAULT = 30.0
PROBE_EVERY = 2.0


def unreachable(e: BaseException) -> bool:
    """Whether an error says the host did not answer (rather than that it refused something)."""
    from fbtui.engine import EngineError

    if isinstance(e, (EngineError, TimeoutError, ConnectionError)):  # not any OSError: a local mkdir is no host's
        return True
    if getattr(e, "unreachable", False) is True:  # a Slurm controller that does not answer (backends/slurm.py)
        return True
    try:
        import requests
        import urllib3

        if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                          urllib3.exceptions.HTTPError)):
            return True
    except ImportError:
        pass
    import docker

    return isinstance(e, docker.errors.APIError) and e.response is not None and e.response.status_code in (502, 503,
                                                                                                          504)


def describe(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    return f"{type(e).__name__}: {text.splitlines()[0][:160]}" if text else type(e).__name__


class HostHealth:
    """Per-host "unreachable since" clocks, and probes that find out when a host is back."""

    def __init__(self, grace: Callable[[str], float], ping: Callable[[str], object]) -> None:
        self.grace, self.ping = grace, ping
        self._since: dict[str, float] = {}
        self._why: dict[str, str] = {}
        self._probing: set[str] = set()
        self._lock = threading.Lock()

    def ok(self, host: str) -> float | None:
        """A call to `host` succeeded: its clock stops. Returns when it had started, if it had."""
        with self._lock:
            self._why.pop(host, None)
            return self._since.pop(host, None)

    def failed(self, host: str, e: BaseException | str) -> None:
        """A call to `host` failed because it did not answer: its clock runs (from the first failure)."""
        with self._lock:
            self._since.setdefault(host, time.monotonic())
            self._why[host] = e if isinstance(e, str) else describe(e)
        self.probe(host)

    def down_for(self, host: str) -> float | None:
        """Seconds since `host` stopped answering, or None when it answers."""
        with self._lock:
            since = self._since.get(host)
        return None if since is None else time.monotonic() - since

    def lost(self, host: str) -> bool:
        """Past its grace period: its stages are lost and runs not started there may go elsewhere."""
        down = self.down_for(host)
        return down is not None and down > self.grace(host)

    def why(self, host: str) -> str:
        with self._lock:
            return self._why.get(host, "")

    def reason(self, host: str) -> str:
        down = self.down_for(host) or 0.0
        return f"{host} has not answered for {down:.0f} s ({self.why(host) or 'no answer'})"

    def probe(self, host: str) -> None:
        """Ask `host` every few seconds, off the caller's thread, until it answers (one probe per host)."""
        with self._lock:
            if host in self._probing:
                return
            self._probing.add(host)
        threading.Thread(target=self._probe, args=(host,), daemon=True, name=f"probe-{host}").start()

    def _probe(self, host: str) -> None:
        try:
            while self.down_for(host) is not None:
                try:
                    self.ping(host)
                except Exception as e:
                    with self._lock:
                        self._why[host] = describe(e)
                    time.sleep(PROBE_EVERY)
                    continue
                self.ok(host)
        finally:
            with self._lock:
                self._probing.discard(host)
