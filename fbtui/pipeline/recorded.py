"""A run's pipeline as it was launched. The supervisor runs these stages, not today's project.yaml:
an edit while a run waits must not change it, and a rerun of an older code state runs that state's
stages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.config.models import StageSpec
    from fbtui.lab import Lab


@dataclass
class RecordedPipeline:
    stages: list[StageSpec]
    needs: dict[str, list[str]]


def pipeline_record(project: Any, config: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The project's stages as stored with a run: command and needs spelled out, the command and env
    templates rendered from the run's config (what ran is what the record shows)."""
    from fbtui.config.stage_checks import render

    out = []
    for s in project.stages:
        command, env = render(project, s, config) if config is not None else (s.default_command(), s.env)
        out.append({**s.model_dump(mode="json", exclude={"after", "before"}), "command": command, "env": env,
                    "needs": project.needs[s.name]})
    return out


def pipeline_of(lab: Lab, run: dict[str, Any]) -> RecordedPipeline | Any:
    """The run's recorded stages; a run recorded before fbtui kept them (or one whose record no
    longer validates) gets the project's current pipeline."""
    from pydantic import ValidationError

    from fbtui.config.models import StageSpec

    if run.get("pipeline"):
        try:
            stages = [StageSpec.model_validate(s) for s in json.loads(run["pipeline"])]
            return RecordedPipeline(stages, {s.name: list(s.needs or []) for s in stages})
        except (ValueError, ValidationError):
            pass
    return lab.project(run["project"])
