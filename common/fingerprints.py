"""What a fingerprint covers, itemised so that fbtui can check it against the working tree.

Code is named by its path in the lab (`common/evaluation.py`, or `project/evaluator.py` for the
running project's own folder) with the sha256 of the file's bytes: the image copies those files
verbatim, so fbtui can hash the same paths in the working tree and tell, without running anything,
whether a recorded evaluation is still what today's code would compute.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any


def _module(name: str) -> Any:
    """A loaded module by name; a stage run as `python -m common.stages.x` is `__main__`."""
    mod = sys.modules.get(name)
    if mod is None:
        main = sys.modules.get("__main__")
        if getattr(getattr(main, "__spec__", None), "name", None) == name:
            return main
    return mod


def lab_path(module: str, project_dir: Path | None) -> str | None:
    """The lab-relative path of a loaded module's source, or None for code outside the lab."""
    file = getattr(_module(module), "__file__", None)
    if not file:
        return None
    path = Path(file).resolve()
    if module == "common" or module.startswith("common."):
        import common

        root = Path(common.__file__).resolve().parent  # installed in site-packages, or the lab's own folder
        if path.is_relative_to(root):
            return "common/" + path.relative_to(root).as_posix()
    if project_dir is not None and path.is_relative_to(project_dir.resolve()):
        return "project/" + path.relative_to(project_dir.resolve()).as_posix()
    return None


def code_files(modules: list[str], project_dir: Path | None) -> dict[str, str]:
    """lab path -> sha256 of the file, for the given modules that are lab code."""
    out: dict[str, str] = {}
    for name in modules:
        rel = lab_path(name, project_dir)
        file = getattr(_module(name), "__file__", None)
        if rel and file:
            out[rel] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    return dict(sorted(out.items()))


def data_made_by(data_cfg: dict[str, Any], project_dir: Path | None) -> dict[str, Any]:
    """What prepared a dataset: the code of the prepare stage, the split, the dataset and the
    transform it used (declared, as the evaluator declares its own: every lab module loaded would
    tie the data to the model code too), and the `data` config."""
    from common import registry

    modules = ["common.stages.prepare", "common.data.prepared"]
    for kind, key, default in (("dataset", "name", None), ("transform", "transform", "none")):
        name = data_cfg.get(key, default)
        if name is not None:
            modules.append(getattr(registry.get(kind, str(name)), "__module__", ""))
    return {"code": code_files(modules, project_dir), "config": {"data": data_cfg}}
