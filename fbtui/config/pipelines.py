"""A project's effective pipeline: common/pipeline.yaml's stages, the project's own list instead,
or the inherited stages extended (`pipeline: {extends: common, stages: [...]}`); ordered, with
each stage's `needs`, and where each stage was written (for errors that point at a line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.config.models import PipelineExtension, StageSpec
from fbtui.config.validate import validate

if TYPE_CHECKING:
    from fbtui.config.models import ProjectConfig
    from fbtui.config.yamlsrc import Source
    from fbtui.lab import Lab

Where = tuple["Source", tuple[Any, ...]]  # a stage's file and its path in it


@dataclass
class Pipeline:
    stages: list[StageSpec]  # in the order they run
    needs: dict[str, list[str]]
    where: dict[str, Where]  # stage -> (file, path of the stage's mapping)
    how: str  # "common/pipeline.yaml", "projects/x/project.yaml" or "common/pipeline.yaml + projects/x/..."

    def line(self, stage: str, *key: Any) -> tuple[str, int | None]:
        src, path = self.where[stage]
        return src.file, src.line_of((*path, *key))


def project_pipeline(lab: Lab, src: Source, spec: ProjectConfig) -> Pipeline:
    base_src, base = lab.default_pipeline
    if spec.pipeline is None:
        where = {s.name: (base_src, ("pipeline", i)) for i, s in enumerate(base)}
        return _ordered(base, where, base_src.file)
    if isinstance(spec.pipeline, list):
        if not spec.pipeline:
            raise src.error(("pipeline",), "a pipeline needs at least one stage")
        for i, st in enumerate(spec.pipeline):
            for key in ("after", "before"):
                if getattr(st, key) is not None:
                    raise src.error(("pipeline", i, key), f"{key}: places a stage added to an inherited pipeline; "
                                    "this list replaces it (write pipeline: {extends: common, stages: [...]} "
                                    "to add to it)")
        where = {s.name: (src, ("pipeline", i)) for i, s in enumerate(spec.pipeline)}
        return _ordered(spec.pipeline, where, src.file)
    return _ordered(*_extend(lab, src, spec.pipeline, base_src, base), f"{base_src.file} + {src.file}")


def _extend(lab: Lab, src: Source, ext: PipelineExtension, base_src: Source,
            base: list[StageSpec]) -> tuple[list[StageSpec], dict[str, Where]]:
    raw = base_src.data.get("pipeline") if isinstance(base_src.data, dict) else None
    entries: list[tuple[dict[str, Any], Where]] = [
        (dict(raw[i]) if isinstance(raw, list) and i < len(raw) else {"name": s.name}, (base_src, ("pipeline", i)))
        for i, s in enumerate(base)]
    for j, st in enumerate(ext.stages):
        path = ("pipeline", "stages", j)
        name = st.get("name")
        if not isinstance(name, str):
            raise src.error(path, "each stage needs a name: (an inherited stage's to change it, a new one to add it)")
        names = [e[0]["name"] for e in entries]
        after, before = st.get("after"), st.get("before")
        if name in names:
            if after is not None or before is not None:
                raise src.error((*path, "after" if after is not None else "before"),
                                f"stage '{name}' is inherited: it keeps its place (only an added stage is placed)")
            k = names.index(name)
            entries[k] = ({**entries[k][0], **st}, (src, path))
            continue
        if after is not None and before is not None:
            raise src.error((*path, "before"), "give after: or before:, not both")
        at = len(entries)
        for key, anchor in (("after", after), ("before", before)):
            if anchor is None:
                continue
            if anchor not in names:
                raise src.error((*path, key), f"no stage '{anchor}' to go {key} (stages: {', '.join(names)})")
            at = names.index(anchor) + (1 if key == "after" else 0)
        entries.insert(at, ({k: v for k, v in st.items() if k not in ("after", "before")}, (src, path)))
    stages = [validate(StageSpec, where[0], data=data, prefix=where[1]) for data, where in entries]
    for s in stages:
        s.after = s.before = None
    return stages, {s.name: w for s, (_, w) in zip(stages, entries)}


def _ordered(stages: list[StageSpec], where: dict[str, Where], how: str) -> Pipeline:
    ordered, needs = order_stages(stages, where)
    return Pipeline(ordered, needs, where, how)


def order_stages(stages: list[StageSpec], where: dict[str, Where]) -> tuple[list[StageSpec], dict[str, list[str]]]:
    """Topological order (ties keep the written order); `needs` defaults to every earlier stage."""
    if not stages:
        from fbtui.errors import ConfigError

        raise ConfigError("a pipeline needs at least one stage")

    def error(stage: str, *key: Any, problem: str) -> Exception:
        src, path = where[stage]
        return src.error((*path, *key), problem)

    by_name: dict[str, int] = {}
    for i, st in enumerate(stages):
        if st.name in by_name:
            raise error(st.name, "name", problem=f"duplicate stage name '{st.name}'")
        by_name[st.name] = i
    for st in stages:
        for j, read in enumerate(st.evaluates.reads if st.evaluates else []):
            if read.split("/", 1)[0] not in by_name or read.split("/", 1)[0] == st.name:
                raise error(st.name, "evaluates", "reads", j,
                            problem=f"no earlier stage '{read.split('/', 1)[0]}' (stages: {', '.join(by_name)})")
    needs: dict[str, list[str]] = {}
    for i, st in enumerate(stages):
        if st.needs is None:
            needs[st.name] = [s.name for s in stages[:i]]
            continue
        for j, dep in enumerate(st.needs):
            if dep not in by_name:
                raise error(st.name, "needs", j, problem=f"unknown stage '{dep}' (stages: {', '.join(by_name)})")
            if dep == st.name:
                raise error(st.name, "needs", j, problem=f"stage '{dep}' cannot need itself")
        needs[st.name] = list(st.needs)
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name):], name]
            raise error(trail[-1], "needs", problem=f"stages form a cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in needs[name]:
            visit(dep, [*trail, name])
        state[name] = 2
        order.append(name)

    for st in stages:
        visit(st.name, [])
    return [stages[by_name[n]] for n in order], needs


def describe(project: Any, config: dict[str, Any] | None) -> list[str]:
    """The effective pipeline as `fbtui config` prints it: where it comes from, the order, and per
    stage what it runs (rendered from `config`), reads, sets and reports."""
    import shlex

    from fbtui.config.stage_checks import render
    from fbtui.config.templates import TemplateError

    how = project.pipeline.how if project.pipeline else "?"
    lines = [f"# pipeline ({how}): {' -> '.join(s.name for s in project.stages)}"]
    for s in project.stages:
        try:
            command, env = render(project, s, config) if config is not None else (s.default_command(), s.env)
        except TemplateError as e:
            command, env = [*s.default_command(), f"  # not renderable: {e}"], s.env
        lines.append(f"#   {s.name}: {shlex.join(command)}")
        needs = project.needs.get(s.name) or []
        if needs:
            lines.append(f"#     needs {', '.join(needs)}")
        if env:
            lines.append("#     env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()))
        if s.secrets:
            lines.append(f"#     secrets {', '.join(s.secrets)} (from the launching shell, never recorded)")
        sources = (["metrics.jsonl"] if s.metrics.jsonl else []) + [f"stdout /{p.pattern}/" for p in s.metrics.stdout]
        sources += [f"tensorboard {g}" for g in s.metrics.tensorboard]
        lines.append(f"#     metrics from {', '.join(sources) or 'nothing'}")
        if s.artifacts:
            lines.append(f"#     artifacts {', '.join(s.artifacts)}")
    return lines
