"""Lab-wide evaluation suites (common/suites.yaml): one named evaluation that scores any run's
model, whichever project it came from.

A suite names its data (a registered dataset with its config, over common/defaults.yaml's `data`),
the split it scores, its evaluator (a registered evaluator with its config, over `eval`) and the
metrics a leaderboard shows (ranked by the first). `auto:` lists projects whose every successful
run is scored on it. Registered names are found by reading the lab's code for
`@register("dataset", "...")` in common/ (fbtui never imports the lab's code: it needs torch), so
a wrong name is refused here with file:line, before anything runs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from fbtui.config.models import Strict
from fbtui.config.names import name_problem
from fbtui.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from fbtui.lab import Lab

SUITES_FILE = "common/suites.yaml"


class SuiteSpec(Strict):
    description: str = ""
    data: dict[str, Any]  # a `data` section: name (a registered dataset) and its settings
    split: Literal["train", "val", "test"] = "test"
    evaluator: dict[str, Any]  # name (a registered evaluator) and its settings, as an `eval` section
    metrics: list[str] = Field(min_length=1)  # the leaderboard's columns; it ranks by the first
    auto: list[str] = Field(default_factory=list)  # projects whose successful runs it scores by itself

    @field_validator("data", "evaluator")
    @classmethod
    def _named_component(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(v.get("name"), str) or not v["name"]:
            raise ValueError("needs a `name:` (a registered component)")
        return v


class SuitesFile(Strict):
    suites: dict[str, SuiteSpec] = Field(default_factory=dict)


@dataclass
class Suite:
    name: str
    spec: SuiteSpec
    file: str
    line: int

    def sections(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The config sections an evaluation on this suite runs with: its data and eval, each over
        the lab's defaults, so that every project is scored on exactly the same thing."""
        data = {**copy.deepcopy(defaults.get("data") or {}), **self.spec.data}
        ev = {k: v for k, v in self.spec.evaluator.items() if k != "name"}
        ev = {**copy.deepcopy(defaults.get("eval") or {}), **ev, "suite": self.spec.evaluator["name"],
              "split": self.spec.split}
        return {"data": data, "eval": ev}

    @property
    def rank_by(self) -> str:
        return self.spec.metrics[0]


def registered(lab: Lab) -> dict[str, set[str]]:
    """kind -> the names common/ registers: a suite scores every project's runs, so its dataset
    and evaluator must be common's (a project's own is loaded in that project's image only)."""
    from fbtui.config.stage_checks import registered as found_in

    return found_in(lab, [lab.root / "common"])


def load_suites(lab: Lab) -> dict[str, Suite]:
    """The lab's suites ({} without common/suites.yaml), every name checked."""
    from fbtui.config.validate import validate
    from fbtui.config.yamlsrc import load_file

    path = lab.root / SUITES_FILE
    if not path.is_file():
        return {}
    src = load_file(path, lab.rel(path))
    if src.data is None:
        return {}
    parsed = validate(SuitesFile, src)
    names = registered(lab)
    projects = set(lab.project_names())
    out = {}
    for name, spec in parsed.suites.items():
        where = ("suites", name)
        if problem := name_problem("suite", name):
            raise ConfigError(problem, file=src.file, line=src.line_of(where, key=True))
        for kind, section in (("dataset", "data"), ("evaluator", "evaluator")):
            component = getattr(spec, section)["name"]
            if component not in names.get(kind, set()):
                known = ", ".join(sorted(names.get(kind, set()))) or "none"
                raise ConfigError(f"unknown {kind} {component!r} (registered: {known})", file=src.file,
                                  line=src.line_of((*where, section, "name")), key=f"suites.{name}.{section}.name")
        for i, project in enumerate(spec.auto):
            if project not in projects:
                raise ConfigError(f"no project {project!r} (projects: {', '.join(sorted(projects)) or 'none'})",
                                  file=src.file, line=src.line_of((*where, "auto", i)), key=f"suites.{name}.auto")
        out[name] = Suite(name, spec, src.file, src.line_of(where, key=True) or 0)
    return out


def get_suite(lab: Lab, name: str) -> Suite:
    suites = load_suites(lab)
    if name not in suites:
        import difflib

        close = difflib.get_close_matches(name, list(suites), n=1)
        raise UsageError(f"no evaluation suite '{name}'" + (f"; did you mean '{close[0]}'?" if close else "")
                         + f" (suites in {SUITES_FILE}: {', '.join(sorted(suites)) or 'none'})")
    return suites[name]
