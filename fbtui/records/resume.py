"""Resuming an ablation: which cells (variant x seed) still need a run under today's code and
config. A cell is done when a run of it succeeded under the same code state and the same resolved
config (seed included); the same code and config mean the same evaluation suite, whose code,
config and data they fix. Failed, cancelled and never-run cells run again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.records.identity import config_hash

if TYPE_CHECKING:
    from fbtui.config.resolve import Resolved, Variant
    from fbtui.store import Store


@dataclass
class Cell:
    variant: Variant | None
    resolved: Resolved
    run: bool  # queue it
    why: str

    @property
    def label(self) -> str:
        name = self.variant.name if self.variant else "(project)"
        seed = self.resolved.config.get("seed")
        return f"{name} seed {seed}" if seed is not None else name


def plan(store: Store, project: str, cells: list[tuple[Variant | None, Resolved]], state_hash: str) -> list[Cell]:
    rows = store.query(
        "SELECT r.id, r.status, r.reason, r.seed, r.config_hash, c.state_hash FROM runs r "
        "LEFT JOIN commits c ON c.id = r.commit_id WHERE r.project = ? AND r.eval_of IS NULL ORDER BY r.id",
        (project,))
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}  # the cell's newest run under this code
    done: dict[tuple[Any, ...], int] = {}
    for r in rows:
        if r["state_hash"] != state_hash:
            continue
        key = (r["config_hash"], r["seed"])
        latest[key] = r
        if r["status"] == "succeeded":
            done[key] = r["id"]
    out = []
    for v, res in cells:
        seed = res.config.get("seed")
        key = (config_hash(res.config), seed if isinstance(seed, int) else None)
        if key in done:
            out.append(Cell(v, res, False, f"run #{done[key]} succeeded under this code and config"))
            continue
        last = latest.get(key)
        if last is None:
            why = "no run under this code and config yet"
        elif last["status"] in ("queued", "running", "pending"):
            out.append(Cell(v, res, False, f"run #{last['id']} is {last['status']}"))
            continue
        else:
            from fbtui.records.show import reason_line

            reason = reason_line(last["reason"], 100)
            why = f"run #{last['id']} {last['status']}" + (f" ({reason})" if reason else "")
        out.append(Cell(v, res, True, why))
    return out
