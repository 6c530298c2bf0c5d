"""What makes two runs the same experiment: the resolved config without its seed, and the code
state (one hash over commit, dirty diff and the small untracked files a build includes)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

SEED_KEY = "seed"


def config_hash(config: str | dict[str, Any]) -> str:
    """sha256 of the resolved config with `seed` left out, in a canonical form (key order and YAML
    spelling do not matter)."""
    data = yaml.safe_load(config) if isinstance(config, str) else config
    data = {k: v for k, v in (data or {}).items() if k != SEED_KEY}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def short_state(sha: str | None, dirty: bool | int | None, state_hash: str | None) -> str:
    """A code state as a person reads it: a1b2c3d4e5, or a1b2c3d4e5-dirty:3f2a (two dirty states
    of one commit must not read the same)."""
    if not sha:
        return f"no-commit:{(state_hash or '')[:4]}" if state_hash else "unknown"
    return sha[:10] + (f"-dirty:{(state_hash or '')[:4]}" if dirty else "")
