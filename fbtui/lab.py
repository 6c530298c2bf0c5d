"""Finding a lab and loading what is in it: lab.yaml, projects, environments, common defaults."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.config.names import DEFAULT_STORE, json_problem, name_problem, suggest_name
from fbtui.config.project_base import Base
from fbtui.config.yamlsrc import Source, load_file
from fbtui.errors import ConfigError, LabNotFound, UsageError

if TYPE_CHECKING:
    from fbtui.config.limits import Limit
    from fbtui.config.models import EnvironmentConfig, LabConfig, ProjectConfig, StageSpec
    from fbtui.config.pipelines import Pipeline

LAB_FILE = "lab.yaml"
HOW_TO_MAKE_A_LAB = (  # (two lines at 80 columns)
    "a lab is a folder with lab.yaml, common/, environments/ and projects/; "
    "run fbtui inside it, or point at it with --lab PATH or FB_LAB=PATH"
)


def find_lab_root(start: Path | None = None, explicit: str | None = None) -> Path:
    """The lab root: --lab, else $FB_LAB, else the nearest folder upward holding lab.yaml."""
    chosen = explicit or os.environ.get("FB_LAB")
    if chosen:
        root = Path(chosen).expanduser().resolve()
        if root.name == LAB_FILE and root.is_file():  # --lab path/to/lab.yaml: its folder
            root = root.parent
        if not (root / LAB_FILE).is_file():
            source = "--lab" if explicit else "FB_LAB"
            what = "does not exist" if not root.exists() else \
                "is not a folder" if not root.is_dir() else f"has no {LAB_FILE}"
            raise LabNotFound(f"{source} points at {root}, which {what}", hint=HOW_TO_MAKE_A_LAB)
        return root
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / LAB_FILE).is_file():
            return folder
    raise LabNotFound(f"not inside a lab: no {LAB_FILE} in {here} or any folder above it", hint=HOW_TO_MAKE_A_LAB)


@dataclass
class Project:
    name: str
    dir: Path
    source: Source
    spec: ProjectConfig
    environment: str
    stages: list[StageSpec]  # in the order they run
    needs: dict[str, list[str]] = field(default_factory=dict)  # stage -> stages it reads
    pipeline: Pipeline | None = None  # where each stage was written, and how the pipeline was made
    base: Base = field(default_factory=lambda: Base({}, {}))  # the config's first layer and the limits


class Lab:
    """`check=False` leaves lab.yaml unvalidated until `config` is first read: the app draws its first
    frame before pydantic and the config models are imported (a quarter of a second here), and
    checks the lab right after it. Commands validate at once, so a bad lab.yaml stops them first."""

    def __init__(self, root: Path, *, check: bool = True) -> None:
        self.root = root
        self.source = load_file(root / LAB_FILE, LAB_FILE)
        self._config: LabConfig | None = None
        self._config_lock = threading.Lock()  # the app's workers may be first to read it, together
        self._projects: dict[str, Project] = {}
        if check:
            self.config  # noqa: B018

    @classmethod
    def find(cls, explicit: str | None = None, start: Path | None = None, *, check: bool = True) -> Lab:
        return cls(find_lab_root(start, explicit), check=check)

    @property
    def config(self) -> LabConfig:
        if self._config is None:
            with self._config_lock:
                if self._config is None:
                    from fbtui.config.models import LabConfig
                    from fbtui.config.validate import validate

                    self._config = validate(LabConfig, self.source)
        return self._config

    @config.setter
    def config(self, value: LabConfig) -> None:  # the supervisor's reload of an edited lab.yaml
        self._config = value

    def _setting(self, key: str, default: str) -> str:
        """A top-level text setting, read before lab.yaml is validated when it is plain text; any
        other value is validated first (and so named as the error it is)."""
        if self._config is None:
            data = self.source.data if isinstance(self.source.data, dict) else None
            value = data.get(key, default) if data is not None else None
            if isinstance(value, str):
                return value
        return str(getattr(self.config, key))

    @property
    def name(self) -> str:
        return self._setting("name", "lab")

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    @property
    def store_path(self) -> Path:
        p = Path(self._setting("store", DEFAULT_STORE)).expanduser()
        return p if p.is_absolute() else self.root / p

    # ------------------------------------------------------------ listing

    def project_names(self) -> list[str]:
        folder = self.root / "projects"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "project.yaml").is_file())

    def environment_names(self) -> list[str]:
        folder = self.root / "environments"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "environment.yaml").is_file())

    # ------------------------------------------------------------ loading

    @cached_property
    def defaults(self) -> Source:
        """common/defaults.yaml: the first layer of every resolved config."""
        path = self.root / "common" / "defaults.yaml"
        if not path.is_file():
            return Source(file=self.rel(path), data={})
        src = load_file(path, self.rel(path))
        if not isinstance(src.data, dict):
            raise ConfigError("expected a mapping of config keys", file=src.file, line=1)
        check_json_values(src, src.data, ())
        return src

    @cached_property
    def limits(self) -> dict[str, Limit]:
        """common/limits.yaml (optional): the values each config key may take."""
        from fbtui.config.limits import parse_limits
        from fbtui.config.resolve import flatten

        path = self.root / "common" / "limits.yaml"
        if not path.is_file():
            return {}
        return parse_limits(load_file(path, self.rel(path)), set(flatten(self.defaults.data)))

    @cached_property
    def default_pipeline(self) -> tuple[Source, list[StageSpec]]:
        path = self.root / "common" / "pipeline.yaml"
        if not path.is_file():
            from fbtui.config.models import StageSpec

            src = Source(file="(built-in)", data={})
            return src, [StageSpec(name=n) for n in ("prepare", "train", "evaluate")]
        from fbtui.config.models import PipelineFile
        from fbtui.config.validate import validate

        src = load_file(path, self.rel(path))
        return src, validate(PipelineFile, src).pipeline

    def load_environment(self, name: str) -> EnvironmentConfig:
        problem = name_problem("environment", name)
        if problem:
            raise ConfigError(problem, file=f"environments/{name}" if "/" not in name else None)
        path = self.root / "environments" / name / "environment.yaml"
        if not path.is_file():
            known = ", ".join(self.environment_names()) or "none"
            raise ConfigError(f"unknown environment '{name}' (known: {known})", file=self.rel(path.parent))
        from fbtui.config.models import EnvironmentConfig
        from fbtui.config.validate import validate

        return validate(EnvironmentConfig, load_file(path, self.rel(path)))

    def project(self, name: str) -> Project:
        problem = name_problem("project", name)
        if problem:
            if (self.root / "projects" / name / "project.yaml").is_file() and "/" not in name:
                raise ConfigError(problem, file=f"projects/{name}",
                                  hint=f"rename the folder: projects/{name} -> projects/{suggest_name(name)}")
            raise UsageError(problem)
        if name not in self._projects:
            self._projects[name] = self._load_project(name)
        return self._projects[name]

    def _load_project(self, name: str) -> Project:
        folder = self.root / "projects" / name
        path = folder / "project.yaml"
        if not path.is_file():
            known = ", ".join(self.project_names()) or "none yet"
            raise ConfigError(
                f"unknown project '{name}' (projects: {known})",
                hint=f"a project is a folder projects/{name}/ with a project.yaml",
            )
        from fbtui.config.models import ProjectConfig
        from fbtui.config.validate import validate

        src = load_file(path, self.rel(path))
        check_json_values(src, src.data, ())
        spec = validate(ProjectConfig, src)
        env = spec.environment or self.config.defaults.environment
        if spec.environment and (problem := name_problem("environment", env)):
            raise src.error(("environment",), problem)
        if env not in self.environment_names():
            known = ", ".join(self.environment_names()) or "none"
            line = src.line_of(("environment",)) if spec.environment else None
            where = {"file": src.file, "line": line, "key": "environment"} if spec.environment else {
                "file": "lab.yaml", "line": self.source.line_of(("defaults", "environment")),
                "key": "defaults.environment"}
            raise ConfigError(f"unknown environment '{env}' (known: {known})", **where)
        from fbtui.config.pipelines import project_pipeline
        from fbtui.config.project_base import project_base
        from fbtui.config.resolve import check_ablations
        from fbtui.config.stage_checks import check_stages

        pipeline = project_pipeline(self, src, spec)
        project = Project(name=name, dir=folder, source=src, spec=spec, environment=env, stages=pipeline.stages,
                          needs=pipeline.needs, pipeline=pipeline, base=project_base(self, folder, src, spec))
        check_stages(self, project)
        check_ablations(self, project)
        return project


def check_json_values(src: Source, data: object, path: tuple) -> None:
    """Every value in `data` must be a JSON value: the first that is not is a file:line error."""
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(k, str):
                raise src.error((*path, k), f"mapping keys must be text, got {k!r}: quote it")
            check_json_values(src, v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            check_json_values(src, v, (*path, i))
    else:
        problem = json_problem(data, allow_nonfinite=True)  # limits.yaml decides about NaN per key
        if problem:  # a config key is shown as resolve shows it: model.hidden, not config.model.hidden
            shown = ".".join(map(str, path[1:])) if path[:1] == ("config",) and len(path) > 1 else None
            raise src.error(path, problem, shown_key=shown)
