"""Rerun from the record: the recorded config (plus new overrides) on the recorded code state.

When the working tree is not that state, the state is rebuilt in a temporary git worktree: the
commit checked out, the recorded diff applied, the recorded untracked files written back. The
image is built from there (content-hashed, so an image still present is reused), the run gets the
recorded pipeline of that state, and the worktree is removed: nothing later needs it.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fbtui.errors import FBError, UsageError

if TYPE_CHECKING:
    from fbtui.images.events import EventSink
    from fbtui.lab import Lab
    from fbtui.pipeline.launch import Launch
    from fbtui.store import Store


class StateUnavailable(FBError):
    """The recorded code state cannot be rebuilt here."""


def apply_overrides(config: dict[str, Any], origins: dict[str, str], overrides: list[str]) -> None:
    """-o key=value onto a recorded config: the key must exist in it, with a value of its type."""
    from fbtui.config.resolve import flatten, parse_override, type_problem
    from fbtui.errors import ConfigError

    flat = flatten(config)
    for text in overrides:
        key, value = parse_override(text)
        if key not in flat:
            close = difflib.get_close_matches(key, sorted(flat), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"the recorded config has no such key{hint}", file=f"-o {text}", key=key)
        problem = type_problem(flat[key], value)
        if problem:
            raise ConfigError(problem, file=f"-o {text}", key=key)
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
        origins[key] = f"-o {text}"


def _merged(recorded: list[str], new: list[str]) -> list[str]:
    """The run's -o overrides then the new ones, one per key (the new value wins)."""
    out: dict[str, str] = {}
    for text in [*recorded, *new]:
        out[text.partition("=")[0].strip()] = text.strip()
    return list(out.values())


def _git(cwd: Path, *args: str, data: bytes | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(cwd), *args], input=data, capture_output=True, timeout=300)
    if proc.returncode != 0:
        raise StateUnavailable(f"git {' '.join(args[:2])} failed: {proc.stderr.decode(errors='replace').strip()[:300]}")
    return proc.stdout.decode(errors="replace")


@contextlib.contextmanager
def checkout_state(lab: Lab, store: Store, commit: dict[str, Any], run_id: int) -> Iterator[Path]:
    """A temporary lab root holding exactly the recorded code state; removed afterwards."""
    from fbtui.gitstate import capture

    what = f"run {run_id}'s code state"
    here = f"`fbtui rerun {run_id} --here` reruns its config on today's code"
    if not commit["is_repo"] or not commit["sha"]:
        raise StateUnavailable(f"{what} was not a git commit, so it cannot be checked out; {here}")
    repo_root = Path(_git(lab.root, "rev-parse", "--show-toplevel").strip())
    try:
        _git(repo_root, "cat-file", "-e", f"{commit['sha']}^{{commit}}")
    except StateUnavailable:
        raise StateUnavailable(f"{what} is commit {commit['sha'][:10]}, which is no longer in the repository "
                               f"(rebased or pruned?): fetch it to rerun exactly; {here}; "
                               f"`fbtui show {run_id} --diff` prints what the record keeps") from None
    untracked = json.loads(commit["untracked"] or "[]")
    blobs = {f["path"]: store.blob(f["sha256"]) for f in untracked}
    lost = [p for p, b in blobs.items() if b is None]
    if lost:
        raise StateUnavailable(f"{what} had untracked files whose content was not kept ({', '.join(lost[:5])}); "
                               f"{here}")
    tmp = Path(tempfile.mkdtemp(prefix=f"fb-rerun-{run_id}-"))
    tree = tmp / "tree"
    try:
        _git(repo_root, "worktree", "add", "--detach", "--quiet", str(tree), commit["sha"])
        if commit["diff"]:
            diff = commit["diff"] if commit["diff"].endswith("\n") else commit["diff"] + "\n"
            _git(tree, "apply", "--binary", "--whitespace=nowarn", "-", data=diff.encode())
        lab_root = tree / lab.root.resolve().relative_to(repo_root.resolve())
        for rel, data in blobs.items():
            path = lab_root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data or b"")
        got = capture(lab_root).state_hash
        if got != commit["state_hash"]:
            raise StateUnavailable(f"{what} could not be rebuilt exactly (the checkout hashes to {got[:12]}, the "
                                   f"record to {commit['state_hash'][:12]}); {here}")
        yield lab_root
    finally:
        subprocess.run(["git", "-C", str(repo_root), "worktree", "remove", "--force", str(tree)],
                       capture_output=True, timeout=120)
        subprocess.run(["git", "-C", str(repo_root), "worktree", "prune"], capture_output=True, timeout=120)
        shutil.rmtree(tmp, ignore_errors=True)


def rerun(lab: Lab, store: Store, run_id: int, overrides: list[str], *, host: str | None = None,
          cache: bool = False, here: bool = False, emit: EventSink | None = None) -> tuple[Launch, str]:
    """Queue a run with run_id's recorded config (plus `overrides`) on its recorded code state.
    Returns the launch and where its code came from, in words."""
    from fbtui.gitstate import capture
    from fbtui.images.service import ensure_project_image, record_layers
    from fbtui.lab import Lab as LabType
    from fbtui.pipeline.launch import Launch, queue_run
    from fbtui.pipeline.supervisor import ensure_supervisor
    from fbtui.records.identity import short_state
    from fbtui.records.show import get_run

    src = get_run(store, run_id)
    if src["eval_of"]:
        raise UsageError(f"run {run_id} re-evaluates run {src['eval_of']}: rerun {src['eval_of']} instead")
    config = yaml.safe_load(src["config"]) or {}
    origins = json.loads(src["origins"] or "{}")
    if not isinstance(config, dict):
        raise FBError(f"run {run_id}'s recorded config is not a mapping")
    config = copy.deepcopy(config)
    apply_overrides(config, origins, overrides)
    try:  # the project's own limits where it still loads; common's otherwise
        limits = lab.project(src["project"]).base.limits
    except FBError:
        limits = lab.limits
    if limits:
        from fbtui.config.limits import check_limits
        from fbtui.config.resolve import flatten

        check_limits(limits, flatten(config), origins)
    target = host or src["host"] or lab.config.defaults.host
    if target not in lab.config.hosts:
        raise UsageError(f"unknown host '{target}' (hosts in lab.yaml: {', '.join(lab.config.hosts)})")
    commit = store.commit(src["commit_id"]) if src["commit_id"] else None
    now = capture(lab.root)
    same = commit is not None and commit["state_hash"] == now.state_hash
    ctx: contextlib.AbstractContextManager[Path | None]
    if here or same or commit is None:
        ctx = contextlib.nullcontext(None)
    else:
        ctx = checkout_state(lab, store, commit, run_id)
    with ctx as root:
        code_lab = lab
        if root is not None:
            code_lab = LabType(root)
            code_lab.config.hosts = lab.config.hosts  # today's hosts; the code is the record's
        project = code_lab.project(src["project"])
        image = ensure_project_image(code_lab, src["project"], host=target, store=store,
                                     emit=emit or (lambda e: None)).tag
        layers = record_layers(code_lab, src["project"], target, store)
    commit_id = src["commit_id"] if (root is not None or same) else store.record_commit(now, root=lab.root)
    if root is not None:
        where = f"the recorded code state {short_state(commit['sha'], commit['dirty'], commit['state_hash'])}, " \
                "rebuilt in a temporary worktree"
    elif same:
        where = "the working tree (it is the recorded code state)"
    else:
        where = f"today's code {now.short} (--here), not the recorded state"
    source = None if root is None else f"worktree of {commit['sha']}" + (" + recorded diff" if commit["dirty"] else "")
    variant = None
    if src["variant"]:
        from fbtui.config.resolve import Variant

        variant = Variant(src["ablation"], src["variant"], {}, src["seed"])
    rid = queue_run(lab, store, project, config=config, origins=origins, variant=variant, commit_id=commit_id,
                    image=image, layers=layers, hosts=[target],
                    overrides=_merged(json.loads(src["overrides"] or "[]"), overrides), no_cache=not cache,
                    ablation=src["ablation"], rerun_of=run_id, source=source)
    ensure_supervisor(lab)
    return Launch([rid], image, [target]), where
