"""A project's first config layer: the sections of common/defaults.yaml it inherits (`inherit:`),
then its own defaults.yaml; and the limits that hold for it: common/limits.yaml's for what it
inherits, then its own limits.yaml. Both files sit next to project.yaml and are optional."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fbtui.errors import ConfigError

if TYPE_CHECKING:
    from fbtui.config.limits import Limit
    from fbtui.config.models import ProjectConfig
    from fbtui.config.yamlsrc import Source
    from fbtui.lab import Lab


@dataclass
class Base:
    data: dict[str, Any]  # what a resolved config starts from
    origins: dict[str, str]  # dotted key -> file:line
    limits: dict[str, Limit] = field(default_factory=dict)
    sections: list[str] | None = None  # the inherited sections of common/defaults.yaml (None: all)


def inherited_sections(lab: Lab, src: Source, spec: ProjectConfig) -> list[str] | None:
    """None: every section of common/defaults.yaml; else the ones the project names (maybe none)."""
    if spec.inherit is True:
        return None
    if spec.inherit is False:
        return []
    known = list(lab.defaults.data or {})
    for i, name in enumerate(spec.inherit):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise src.error(("inherit", i), f"common/defaults.yaml has no section '{name}'"
                            + (f"; did you mean '{close[0]}'?" if close else "")
                            + f" (sections: {', '.join(known)})", shown_key="inherit")
    return list(spec.inherit)


def project_base(lab: Lab, folder: Path, src: Source, spec: ProjectConfig) -> Base:
    from fbtui.config.limits import parse_limits
    from fbtui.config.resolve import flatten, type_problem
    from fbtui.config.yamlsrc import load_file
    from fbtui.lab import check_json_values

    sections = inherited_sections(lab, src, spec)
    common = lab.defaults
    data = {k: copy.deepcopy(v) for k, v in (common.data or {}).items() if sections is None or k in sections}
    origins = {k: f"{common.file}:{common.line_of(tuple(k.split('.')))}" for k in flatten(data)}
    limits = {k: v for k, v in lab.limits.items() if k.split(".")[0] in data}
    path = folder / "defaults.yaml"
    if path.is_file():
        own = load_file(path, lab.rel(path))
        if own.data is not None and not isinstance(own.data, dict):
            raise ConfigError("expected a mapping of config keys", file=own.file, line=1)
        check_json_values(own, own.data or {}, ())
        inherited = flatten(data)
        for key, value in flatten(own.data or {}).items():
            here = tuple(key.split("."))
            if key in inherited and (problem := type_problem(inherited[key], value)):
                raise own.error(here, problem + " (the type common/defaults.yaml gives it)", shown_key=key)
            node = data
            for part in here[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[here[-1]] = copy.deepcopy(value)
            origins = {k: o for k, o in origins.items() if not (k.startswith(key + ".") or key.startswith(k + "."))}
            origins[key] = f"{own.file}:{own.line_of(here)}"
    path = folder / "limits.yaml"
    if path.is_file():
        known = set(flatten(data)) | set(flatten(spec.config))
        limits.update(parse_limits(load_file(path, lab.rel(path)), known, "the project's config"))
    return Base(data, origins, limits, sections)
