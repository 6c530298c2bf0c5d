"""The stage cache: a stage whose inputs match an earlier successful stage is reused, not rerun.

Inputs: the image, the stage's command, the config sections it reads, and the content hashes of
its predecessors' declared artifacts (so a retrained model, even from the same config, is new)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.store import Store


def cache_key(store: Store, run: dict[str, Any], spec: StageSpec, stages: dict[str, dict[str, Any]],
              needs: list[str]) -> str | None:
    # the C loader where PyYAML has it: this runs for every waiting run on every supervisor tick
    config = yaml.load(run["config"], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    if spec.reads is not None:
        config = {k: config.get(k) for k in sorted(spec.reads)}
    upstream = []
    for dep in needs:
        row = stages[dep]
        source_run, source_stage = row["run_id"], dep
        if row["cached_from"]:
            origin = store.query("SELECT run_id, name FROM stages WHERE id = ?", (row["cached_from"],))[0]
            source_run, source_stage = origin["run_id"], origin["name"]
        arts = store.query("SELECT path, sha256 FROM artifacts WHERE run_id = ? AND stage = ? ORDER BY path",
                           (source_run, source_stage))
        upstream.append([dep, [[a["path"], a["sha256"]] for a in arts]])
    image = stages[spec.name]["image"] or run["image"]
    if not image:
        return None
    manifest = {"image": image, "stage": spec.name, "command": spec.run_command(), "config": config,
                "upstream": upstream, "env": sorted(spec.secrets)}
    if spec.env:  # values set in the stage (a key recorded before they existed stays the same)
        manifest["env_values"] = spec.env
    if run.get("suite_code"):  # a suite's common/, copied in ahead of the image's own
        manifest["suite_code"] = run["suite_code"]
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=str).encode()).hexdigest()


def find_cached(store: Store, key: str, host: str, run_id: int,
                volume_kept: Callable[[str, str], bool] | None = None) -> dict[str, Any] | None:
    """The latest successful stage with this key on this host whose output still exists: a local
    folder, or a remote volume (`volume_kept(host, name)` asks; the janitor removes volumes)."""
    rows = store.query(
        "SELECT * FROM stages WHERE cache_key = ? AND status = 'succeeded' AND host = ? AND run_id != ? "
        "ORDER BY id DESC LIMIT 5", (key, host, run_id))
    for row in rows:
        if host == "local" or (row["out"] or "").startswith("/"):  # a folder here, or on a Slurm host's shared path
            if row["out"] and Path(row["out"]).is_dir():
                return row
        elif volume_kept is None or (row["out"] and volume_kept(host, row["out"])):
            return row
    return None
