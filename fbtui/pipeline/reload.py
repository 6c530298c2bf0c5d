"""The supervisor follows lab.yaml: a change is read at once (the file's size and mtime are looked at
every tick), new hosts are usable at once, changed ones reconnect with their new settings. A broken
lab.yaml is reported in one line and the last good one stays. A host that disappears keeps serving
the stages already running there (they are followed to their end); its runs say why they wait.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fbtui.lab import LAB_FILE, Lab

if TYPE_CHECKING:
    from fbtui.config.models import HostConfig
    from fbtui.pipeline.supervisor import Supervisor

UNDECIDED = ("running", "lost")


class LabWatch:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.path = sup.lab.root / LAB_FILE
        self.stamp = self._stamp()
        self._seen = self.stamp
        self.retired: dict[str, HostConfig] = {}  # removed from lab.yaml, still running stages
        self._named: dict[int, str] = {}  # run -> the removed-host reason written on it

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def check(self) -> bool:
        """Reload lab.yaml if it changed; True when a new configuration is in force."""
        stamp = self._stamp()
        if stamp == self.stamp:
            self._retire_idle()
            return False
        if stamp != self._seen:  # read it once it has stood still for a tick: never half-written
            self._seen = stamp
            return False
        self.stamp = stamp
        try:
            new = Lab(self.sup.lab.root)
        except Exception as e:  # half-written or invalid: the next write is read again
            text = (getattr(e, "message", None) or str(e)).splitlines()
            print(f"lab.yaml changed but does not load; the supervisor keeps the previous one: "
                  f"{text[0] if text else type(e).__name__}", flush=True)
            return False
        self.apply(new)
        return True

    def apply(self, new: Lab) -> None:
        sup, old = self.sup, self.sup.lab.config
        config = new.config
        if (config.name, config.store) != (old.name, old.store):  # what names containers and the store
            print("lab.yaml: a new name or store takes effect when this supervisor ends (it ends when idle)",
                  flush=True)
            config = config.model_copy(update={"name": old.name, "store": old.store})
        gone = [n for n in old.hosts if n not in config.hosts]
        self.retired = {n: h for n, h in {**self.retired, **{n: old.hosts[n] for n in gone}}.items()
                        if n not in config.hosts and self._busy(n)}
        sup.lab.config, sup.lab.source = config, new.source
        changed = sup.hosts.reconfigure({**config.hosts, **self.retired})
        added = [n for n in config.hosts if n not in old.hosts]
        parts = [f"{label}: {', '.join(names)}" for label, names in
                 (("added", added), ("removed", gone), ("changed", [n for n in changed if n not in gone])) if names]
        print(f"lab.yaml reloaded ({'; '.join(parts) or 'hosts unchanged'})", flush=True)

    def _busy(self, host: str) -> bool:
        return bool(self.sup.store.query(f"SELECT 1 FROM stages WHERE host = ? AND status IN {UNDECIDED!r} LIMIT 1",
                                         (host,)))

    def _retire_idle(self) -> None:
        """A removed host whose last stage ended: its client and tunnel go."""
        done = [n for n in self.retired if not self._busy(n)]
        if done:
            for n in done:
                del self.retired[n]
            self.sup.hosts.reconfigure({**self.sup.lab.config.hosts, **self.retired})

    def blocked(self, run: dict[str, Any]) -> bool:
        """A run bound to, or asking only for, hosts lab.yaml no longer names: its reason says so.
        True when the supervisor should leave it be this tick (nothing of it runs)."""
        hosts, default = self.sup.lab.config.hosts, self.sup.lab.config.defaults.host
        asked = [run["host"]] if run["host"] else (run["requested_host"] or default).split(",")
        missing = [h for h in asked if h not in hosts]
        if not missing or len(missing) < len(asked) or run["cancel_requested"]:
            self._named.pop(run["id"], None)
            return False
        if self._stamp() != self.stamp:
            return True  # lab.yaml changed and is read next tick: it may name the host now
        stages = self.sup.store.stages(run["id"])
        running = [s["name"] for s in stages if s["status"] == "running"]
        names = " and ".join(missing)
        if running:
            reason = (f"host {names} was removed from lab.yaml: stage {', '.join(running)} is followed to its end; "
                      f"later stages wait until lab.yaml names {names} again (or: fbtui cancel {run['id']})")
        else:
            reason = (f"waiting: host {names} was removed from lab.yaml; the run goes on when lab.yaml names "
                      f"{names} again (or: fbtui cancel {run['id']})")
        if self._named.get(run["id"]) != reason:
            self._named[run["id"]] = reason
            self.sup.store.update_run(run["id"], reason=reason)
            pending = next((s for s in stages if s["status"] == "pending"), None)
            if pending is not None and not running:
                self.sup.store.update_stage(run["id"], pending["name"], reason=reason)
                for key in [k for k in self.sup.waits if k[0] == run["id"]]:
                    del self.sup.waits[key]  # so the next wait reason is written again
            print(f"run {run['id']}: {reason}", flush=True)
        return not running
