"""Named components: the config chooses each piece of the pipeline by name.

Kinds: dataset, transform, model, loss, optimizer, scheduler, trainer, evaluator. A project
overrides one by registering its own under a new name (in a top-level .py of its folder) and
selecting that name in its config; everything else is inherited from `common`.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from common.errors import StageError

KINDS = ("dataset", "transform", "model", "loss", "optimizer", "scheduler", "trainer", "evaluator")
# The config key that selects each kind, for error messages that say what to change.
CONFIG_KEYS = {
    "dataset": "data.name", "transform": "data.transform", "model": "model.name", "loss": "loss.name",
    "optimizer": "optim.name", "scheduler": "schedule.name", "trainer": "train.trainer",
    "evaluator": "eval.suite",
}
_REGISTRY: dict[str, dict[str, Any]] = {k: {} for k in KINDS}
T = TypeVar("T")


def register(kind: str, name: str, *, replace: bool = False) -> Callable[[T], T]:
    """Decorator: `@register("model", "digits-cnn")` on a class or factory function."""
    if kind not in _REGISTRY:
        raise ValueError(f"unknown component kind {kind!r} (kinds: {', '.join(KINDS)})")

    def deco(obj: T) -> T:
        existing = _REGISTRY[kind].get(name)
        # Re-running the same module (e.g. importlib.reload) is fine; two different objects are not.
        if existing is not None and not replace and _qualname(existing) != _qualname(obj):
            raise ValueError(f"{kind} {name!r} is already registered by {_qualname(existing)}; "
                             f"pick another name (or pass replace=True)")
        _REGISTRY[kind][name] = obj
        return obj

    return deco


def get(kind: str, name: str) -> Any:
    _load_builtins()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY[kind])) or "none"
        raise StageError(f"{CONFIG_KEYS[kind]}: unknown {kind} {name!r} (registered: {known})") from None


def names(kind: str) -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY[kind])


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _load_builtins() -> None:
    # Imported lazily so that `common.registry` stays importable from the modules it loads.
    import common.builtins  # noqa: F401


def provenance(kind: str, name: str, project_dir: Path | None = None) -> dict[str, Any]:
    """Where a registered component came from, with a hash of its own source code."""
    obj = get(kind, name)
    module = getattr(obj, "__module__", "")
    file = getattr(sys.modules.get(module), "__file__", None)
    origin = "common" if module == "common" or module.startswith("common.") else "other"
    if file and project_dir is not None and Path(file).resolve().is_relative_to(project_dir.resolve()):
        origin = "project"
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):  # no source on disk (e.g. compiled): hash the module file instead
        source = Path(file).read_text() if file else repr(obj)
    return {
        "name": name,
        "origin": origin,
        "module": module,
        "qualname": getattr(obj, "__qualname__", ""),
        "file": file,
        "sha256": hashlib.sha256(source.encode()).hexdigest(),
    }
