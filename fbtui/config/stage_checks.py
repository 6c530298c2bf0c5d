"""Checks of a project's stages that need its config: each command and env template names keys
the config has and stages the stage reads; and, where common's stages run, each component the
config names (`model.name: mlp`) is one that common/ or the project registers."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.config.templates import TemplateError, render_command, render_env
from fbtui.errors import ConfigError

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.lab import Lab, Project

REGISTER = re.compile(r"""@?register\(\s*["'](\w+)["']\s*,\s*["']([^"']+)["']""")
# The config key naming each component kind, as common/stages/train.py reads them (fbtui never
# imports common: it needs torch). A key left unset takes common's default there.
COMPONENT_KEYS = {"data.name": "dataset", "data.transform": "transform", "model.name": "model",
                  "optim.name": "optimizer", "schedule.name": "scheduler", "loss.name": "loss",
                  "train.trainer": "trainer", "eval.suite": "evaluator"}


def render(project: Project, spec: StageSpec, config: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """A stage's command and env values for one run's config; TemplateError names what is wrong."""
    needs = project.needs.get(spec.name, [])
    return render_command(spec.default_command(), config, needs), render_env(spec.env, config, needs)


def template_error(project: Project, spec: StageSpec, e: TemplateError) -> ConfigError:
    key = "env" if str(e).startswith("env ") else "command"
    if project.pipeline is None:
        return ConfigError(str(e), key=f"stage {spec.name}: {key}")
    src, path = project.pipeline.where[spec.name]
    field = key if key in _given(src, path) else None
    return src.error((*path, field) if field else path, str(e), shown_key=f"{spec.name}.{key}")


def _given(src: Any, path: tuple[Any, ...]) -> set[str]:
    node = src.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return set()
    return set(node) if isinstance(node, dict) else set()


def check_stages(lab: Lab, project: Project) -> None:
    """Every template renders against the project's own config (variants cannot add keys)."""
    from fbtui.config.resolve import base_config

    if not any(_templated(s) for s in project.stages):
        return
    config = base_config(lab, project)
    for spec in project.stages:
        try:
            render(project, spec, config)
        except TemplateError as e:
            if not e.null:  # a null may still get a value from a variant or -o: checked at launch
                raise template_error(project, spec, e) from None


def check_rendered(project: Project, config: dict[str, Any], only: list[str] | None = None) -> None:
    """At launch: every stage's templates render for this run's config."""
    for spec in project.stages:
        if only and spec.name not in only:
            continue
        try:
            render(project, spec, config)
        except TemplateError as e:
            raise template_error(project, spec, e) from None


def _templated(spec: StageSpec) -> bool:
    return any("{" in w or "}" in w for w in [*(spec.command or []), *spec.env.values()])


# ------------------------------------------------------------ components


def registered(lab: Lab, folders: list[Path]) -> dict[str, set[str]]:
    """kind -> the names `register(kind, name)` calls in these folders' Python files give."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else []:
            try:
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for kind, name in REGISTER.findall(text):
                found.setdefault(kind, set()).add(name)
    return found


def uses_common_stages(project: Project) -> bool:
    return any(len(c := s.default_command()) > 2 and c[:2] == ["python3", "-m"] and c[2].startswith("common.")
               for s in project.stages)


def check_components(lab: Lab, project: Project, flat: dict[str, Any], origins: dict[str, str]) -> None:
    """`model.name: mlpp` is refused here, where it was set, not minutes later in the train stage."""
    if not uses_common_stages(project):
        return
    names = registered(lab, [lab.root / "common", project.dir])
    for key, kind in COMPONENT_KEYS.items():
        value = flat.get(key)
        known = names.get(kind)
        if not isinstance(value, str) or not known or value in known:
            continue
        close = difflib.get_close_matches(value, sorted(known), n=1)
        raise ConfigError(f"no {kind} registered as {value!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" (registered: {', '.join(sorted(known))}; a project registers its own with "
                          f"@register({kind!r}, NAME) in a .py file of its folder)",
                          file=origins.get(key), key=key)
