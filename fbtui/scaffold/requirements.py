"""What a script imports that the base image lacks: its requirements.txt, from the import statements alone."""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

# Import names whose distribution is called something else (the common cases).
IMPORT_TO_DIST = {
    "sklearn": "scikit-learn", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python-headless",
    "skimage": "scikit-image", "bs4": "beautifulsoup4", "dateutil": "python-dateutil", "dotenv": "python-dotenv",
    "attr": "attrs", "jwt": "pyjwt", "git": "gitpython", "Crypto": "pycryptodome", "serial": "pyserial",
    "fitz": "pymupdf", "google": "protobuf", "lightning": "lightning", "pytorch_lightning": "pytorch-lightning",
    "tensorboardX": "tensorboardX", "wandb": "wandb", "hydra": "hydra-core", "omegaconf": "omegaconf",
}
# Installed in every base image: torch and what it pulls in, and common/'s dependencies with theirs
# (Dockerfile.base installs torch and common/; scikit-learn pulls scipy, joblib and threadpoolctl).
BASE_DISTS = {
    "torch", "triton", "filelock", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2", "markupsafe",
    "fsspec", "numpy", "pyyaml", "scikit-learn", "scipy", "joblib", "threadpoolctl", "pillow", "setuptools", "pip",
}
# The lab's own package (Dockerfile.base installs common/ as `common`)
LAB_PACKAGES = {"common"}
# Pinning advice: these must match the base image's torch, or pip replaces torch with a PyPI build.
TORCH_COMPANIONS = {"torchvision", "torchaudio", "torchtext"}


@dataclass
class ImportFacts:
    modules: dict[str, int] = field(default_factory=dict)  # top-level module -> first line
    optional: set[str] = field(default_factory=set)  # imported only inside try/except ImportError
    torch_tensorboard: bool = False  # from torch.utils.tensorboard import SummaryWriter (needs `tensorboard`)
    summary_writer: bool = False  # SummaryWriter from torch.utils.tensorboard or tensorboardX


def read_imports(tree: ast.Module) -> ImportFacts:
    facts = ImportFacts()
    guarded = _guarded_lines(tree)
    unguarded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module.split(".")[0] in ("torch", "tensorboardX") and (
                    node.module.endswith("tensorboard") or node.module.startswith("tensorboardX")):
                facts.summary_writer |= any(a.name in ("SummaryWriter", "*") for a in node.names)
        else:
            continue
        for name in names:
            if name.startswith("torch.utils.tensorboard"):
                facts.torch_tensorboard = True
                facts.summary_writer = True  # `import torch.utils.tensorboard as tb` then tb.SummaryWriter
            if name.startswith("tensorboardX"):
                facts.summary_writer = True
            top = name.split(".")[0]
            line = node.lineno
            if top not in facts.modules or line < facts.modules[top]:
                facts.modules[top] = line
            (facts.optional if line in guarded else unguarded).add(top)
    facts.optional -= unguarded  # imported for sure somewhere else
    return facts


def bare_writer_line(tree: ast.Module) -> int | None:
    """The line of a `SummaryWriter()` with no log dir: it writes to ./runs, which is /fb/runs, outside /fb/out."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and not node.args and not any(
                kw.arg in ("log_dir", "logdir") or kw.arg is None for kw in node.keywords):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name == "SummaryWriter":
                return node.lineno
    return None


def _guarded_lines(tree: ast.Module) -> set[int]:
    """Lines of imports inside `try:` blocks that catch ImportError (optional dependencies)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
        if not any(n in text for text in caught for n in ("ImportError", "ModuleNotFoundError", "Exception")) \
                and not any(h.type is None for h in node.handlers):
            continue
        for stmt in node.body:
            for sub in ast.walk(stmt):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    lines.add(sub.lineno)
    return lines


def normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def base_dists(lab_root: Path, environment_pip: list[str]) -> set[str]:
    """BASE_DISTS plus what this lab's common/ and environment install."""
    from packaging.requirements import InvalidRequirement, Requirement

    found = set(BASE_DISTS)
    specs = list(environment_pip)
    try:
        import tomllib

        data = tomllib.loads((lab_root / "common" / "pyproject.toml").read_text())
        specs += list(data.get("project", {}).get("dependencies", []))
    except (ImportError, OSError, ValueError):
        pass  # Python 3.10, or a lab without common/pyproject.toml: the fixed list stands
    for spec in specs:
        try:
            found.add(normalize(Requirement(spec).name))
        except InvalidRequirement:
            continue
    return found


@dataclass
class Requirements:
    lines: list[str]  # requirements.txt lines, comments included
    needed: list[str]  # distributions named (not commented out)
    local: list[str]  # modules found next to the script (its own code: copy it alongside)
    notes: list[str]


def requirements(facts: ImportFacts, script_dir: Path, base: set[str]) -> Requirements:
    stdlib = set(getattr(sys, "stdlib_module_names", ())) | {"__future__"}
    out = Requirements([], [], [], [])
    wanted: list[tuple[str, str]] = []
    for top in sorted(facts.modules, key=lambda m: facts.modules[m]):
        if top in stdlib or top in LAB_PACKAGES:
            continue
        if (script_dir / f"{top}.py").is_file() or (script_dir / top / "__init__.py").is_file():
            out.local.append(top)
            continue
        dist = IMPORT_TO_DIST.get(top, top)
        if normalize(dist) not in base:
            wanted.append((top, dist))
    if facts.torch_tensorboard and "tensorboard" not in base and all(d != "tensorboard" for _, d in wanted):
        wanted.append(("torch.utils.tensorboard", "tensorboard"))  # torch imports it when SummaryWriter loads
    for top, dist in wanted:
        if top in facts.optional:
            out.lines.append(f"# {dist}  (optional: the script imports it inside try/except)")
            continue
        out.lines.append(dist)
        out.needed.append(dist)
        if top in TORCH_COMPANIONS:
            out.notes.append(f"requirements.txt: pin {dist} to the release that matches the base image's torch "
                             f"(an unpinned {dist} may pull another torch from PyPI)")
    return out
