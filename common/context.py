"""Where a stage finds its config, inputs, project code and output folder.

Inside a container: /fb/config.yaml, /fb/in/<stage>/, /fb/project, /fb/out. Outside one: the
same from arguments (--config, --in STAGE=DIR, --project-dir, --out) or the environment
(FB_CONFIG, FB_IN, FB_PROJECT_DIR, FB_OUT). Arguments beat the environment beat /fb.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common import report
from common.errors import StageError


@dataclass
class StageContext:
    name: str
    config: dict[str, Any]
    out: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    in_root: Path | None = None
    project_dir: Path | None = None

    def input(self, stage: str, filename: str | None = None) -> Path:
        """A predecessor's output folder (or a file in it); a clear error when it is missing."""
        base = self.inputs.get(stage) or (self.in_root / stage if self.in_root else None)
        if base is None or not base.is_dir():
            raise StageError(f"input of stage '{stage}' not found at {base} "
                             f"(pass --in {stage}=DIR or set FB_IN to a folder holding {stage}/)")
        if filename is None:
            return base
        path = base / filename
        if not path.exists():
            raise StageError(f"{path} not found: did stage '{stage}' finish?")
        return path


def cfg(config: dict[str, Any], dotted: str) -> Any:
    """config['a']['b'] for 'a.b', with an error that names the missing key."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise StageError(f"config: missing key '{dotted}' (is the config resolved by `fbtui config`?)")
        node = node[part]
    return node


def parse(stage: str, argv: list[str] | None = None) -> StageContext:
    ap = argparse.ArgumentParser(prog=f"python -m common.stages.{stage}",
                                 description=f"Run the '{stage}' stage of a Force Build pipeline.")
    ap.add_argument("--config", help="resolved config YAML (env FB_CONFIG, default /fb/config.yaml)")
    ap.add_argument("--out", help="this stage's output folder (env FB_OUT, default /fb/out)")
    ap.add_argument("--in", dest="inputs", action="append", default=[], metavar="STAGE=DIR",
                    help="a predecessor's output folder (repeatable; env FB_IN holds one folder per stage)")
    ap.add_argument("--project-dir", help="the project's files (env FB_PROJECT_DIR, default /fb/project)")
    args = ap.parse_args(argv)

    config_path = Path(args.config or os.environ.get("FB_CONFIG") or "/fb/config.yaml")
    if not config_path.is_file():
        raise StageError(f"config file {config_path} not found (pass --config PATH or set FB_CONFIG)")
    try:
        config = yaml.safe_load(config_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise StageError(f"{config_path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise StageError(f"{config_path}: expected a mapping at the top level")

    out = Path(args.out or os.environ.get("FB_OUT") or "/fb/out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StageError(f"cannot create output folder {out}: {e.strerror}") from None

    inputs: dict[str, Path] = {}
    for item in args.inputs:
        stage_name, sep, d = item.partition("=")
        if not sep or not stage_name or not d:
            raise StageError(f"--in {item}: expected STAGE=DIR, for example --in prepare=runs/1/prepare")
        inputs[stage_name] = Path(d)

    explicit_project = args.project_dir or os.environ.get("FB_PROJECT_DIR")
    project_dir = Path(explicit_project or "/fb/project")
    if explicit_project and not project_dir.is_dir():
        raise StageError(f"project folder {project_dir} not found (--project-dir / FB_PROJECT_DIR)")

    ctx = StageContext(stage, config, out, inputs, Path(os.environ.get("FB_IN") or "/fb/in"),
                       project_dir if project_dir.is_dir() else None)
    report.configure(out)
    return ctx


def import_project_code(project_dir: Path | None) -> list[str]:
    """Import every top-level *.py of the project (sorted), so its @register calls take effect."""
    if project_dir is None:
        return []
    sys.path.insert(0, str(project_dir))
    imported = []
    for path in sorted(project_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        # Project module names must not shadow one already loaded (e.g. a project 'model.py'
        # imported twice by two stages in one process): drop a stale one from another folder.
        stale = sys.modules.get(path.stem)
        if stale is not None and Path(getattr(stale, "__file__", "") or "").resolve() != path.resolve():
            del sys.modules[path.stem]
        try:
            importlib.import_module(path.stem)
        except StageError:
            raise
        except Exception as e:
            raise StageError(f"project code {path} failed to import: {type(e).__name__}: {e}") from e
        imported.append(path.name)
    return imported
