"""Config resolution: common defaults -> project -> ablation variant -> `-o key=value` overrides.

Mappings merge; lists and scalars replace. Every leaf remembers where its value came from.
A value whose key exists in common/defaults.yaml must have the default's type.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fbtui.config.names import grid_size, json_problem, name_problem, seed_problem
from fbtui.config.yamlsrc import parse_scalar
from fbtui.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from fbtui.config.models import AblationSpec
    from fbtui.config.yamlsrc import Source
    from fbtui.lab import Lab, Project


@dataclass
class Variant:
    """One point of an ablation: its overrides (dotted key -> value) and seed."""

    ablation: str | None
    name: str
    overrides: dict[str, Any]
    seed: int | None = None
    lines: dict[str, int] = field(default_factory=dict)  # dotted key -> line in project.yaml

    @property
    def label(self) -> str:
        return self.name if self.seed is None else f"{self.name} seed={self.seed}"


@dataclass
class Resolved:
    config: dict[str, Any]
    origins: dict[str, str]  # dotted leaf key -> "file:line" or "-o key=value"

    def flat(self) -> dict[str, Any]:
        return flatten(self.config)


# ---------------------------------------------------------------- helpers


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _type_name(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return None  # null in the defaults: anything goes


def type_problem(default: Any, value: Any) -> str | None:
    """Why `value` cannot replace `default`, or None when it can."""
    from fbtui.config.validate import describe

    expected = _type_name(default)
    if expected is None or value is None:
        return None
    ok = {
        "true or false": isinstance(value, bool),
        "an integer": isinstance(value, int) and not isinstance(value, bool),
        "a number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "a string": isinstance(value, str),
        "a list": isinstance(value, list),
        "a mapping": isinstance(value, dict),
    }[expected]
    return None if ok else f"expected {expected}, got {describe(value)}"


def format_value(v: Any) -> str:
    """Short, stable text for a variant name: 3e-4, 0.5, 256, true."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        plain = repr(v)
        mantissa, _, exp = f"{v:e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        sci = f"{mantissa}e{int(exp)}"
        if float(sci) == v and len(sci) < len(plain):
            return sci
        return plain
    if isinstance(v, (list, dict)):
        import json

        return json.dumps(v, separators=(",", ":"))
    return str(v)


class _Layers:
    """Applies layers onto the defaults, checking types and tracking origins."""

    def __init__(self, lab: Lab, project: Project) -> None:
        base = project.base
        self.default_flat = flatten(base.data)
        self.config: dict[str, Any] = copy.deepcopy(base.data)
        self.origins: dict[str, str] = dict(base.origins)
        self.project = project
        self.limits = base.limits
        self.typed = self.default_flat  # what fixes each key's type; the project's config joins it

    def fix_types(self) -> None:
        """After the project's own values: a key it brings (in none of the defaults) takes their type
        for the variants and overrides, as a default's would (write 1.0, not 1, for a number)."""
        own = {k: v for k, v in flatten(self.config).items() if k not in self.default_flat}
        self.typed = {**own, **self.default_flat}

    def known_keys(self) -> set[str]:
        keys = set(flatten(self.config))
        for k in list(keys):
            parts = k.split(".")
            keys.update(".".join(parts[:i]) for i in range(1, len(parts)))
        return keys

    def check(self, dotted_key: str, value: Any) -> str | None:
        if dotted_key in self.typed:
            return type_problem(self.typed[dotted_key], value)
        prefix = dotted_key + "."
        if any(k.startswith(prefix) for k in self.typed) and not isinstance(value, dict):
            from fbtui.config.validate import describe

            return f"expected a mapping, got {describe(value)}"
        return None

    def set(self, dotted_key: str, value: Any, origin: str, err: Any) -> None:
        """Set one dotted key; `err(problem)` builds the error that points at the source."""
        if isinstance(value, dict) and value:
            for k, v in value.items():
                self.set(f"{dotted_key}.{k}", v, origin, err)
            return
        limit = self.limits.get(dotted_key)
        problem = json_problem(value, allow_nonfinite=limit is not None and not limit.finite) or self.check(
            dotted_key, value)
        if problem:
            raise err(problem)
        node = self.config
        parts = dotted_key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = copy.deepcopy(value)
        prefix = dotted_key + "."
        for k in [k for k in self.origins if k.startswith(prefix) or prefix.startswith(k + ".")]:
            del self.origins[k]
        self.origins[dotted_key] = origin

    def apply_project(self) -> None:
        src = self.project.source

        def walk(data: dict[str, Any], path: tuple[str, ...], dotted_prefix: str) -> None:
            for k, v in data.items():
                key = f"{dotted_prefix}{k}"
                here = (*path, k)
                if isinstance(v, dict) and v:
                    walk(v, here, key + ".")
                    continue
                line = src.line_of(here)
                self.set(key, v, f"{src.file}:{line}",
                         lambda p, here=here, key=key: src.error(here, p, shown_key=key))

        walk(self.project.spec.config, ("config",), "")
        self.fix_types()

    def require_known(self, key: str, err: Any) -> None:
        known = self.known_keys()
        if key in known:
            return
        close = difflib.get_close_matches(key, sorted(known), n=1)
        raise err("unknown config key" + (f"; did you mean '{close[0]}'?" if close else "")
                  + " (a variant or override changes a key that the defaults or the project set)")


# ---------------------------------------------------------------- ablations


def expand(lab: Lab, project: Project, ablation: str) -> list[Variant]:
    """Every variant of an ablation, each repeated for every seed."""
    spec = project.spec.ablations.get(ablation)
    if spec is None:
        known = ", ".join(project.spec.ablations) or "none"
        raise ConfigError(f"project '{project.name}' has no ablation '{ablation}' (ablations: {known})")
    src = project.source
    base = ("ablations", ablation)
    variants: list[Variant] = []
    for vname, overrides in spec.variants.items():
        lines = {k: src.line_of((*base, "variants", vname, k)) or 0 for k in overrides}
        variants.append(Variant(ablation, vname, dict(overrides), lines=lines))
    if spec.grid:
        keys = list(spec.grid)
        shorts = _short_names(keys)
        lines = {k: src.line_of((*base, "grid", k)) or 0 for k in keys}
        texts = {k: [f"{shorts[k]}={format_value(v)}" for v in spec.grid[k]] for k in keys}
        for idx in itertools.product(*(range(len(spec.grid[k])) for k in keys)):
            name = ",".join(texts[k][i] for k, i in zip(keys, idx))
            overrides = {k: spec.grid[k][i] for k, i in zip(keys, idx)}
            variants.append(Variant(ablation, name, overrides, lines=lines))
    if spec.seeds:
        variants = [Variant(v.ablation, v.name, v.overrides, s, v.lines) for v in variants for s in spec.seeds]
    return variants


def _short_names(keys: list[str]) -> dict[str, str]:
    last = [k.split(".")[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def check_ablations(lab: Lab, project: Project) -> None:
    """Every ablation: non-empty, well-typed, known keys, a real baseline."""
    src = project.source
    layers = _Layers(lab, project)
    layers.apply_project()
    for name, spec in project.spec.ablations.items():
        base = ("ablations", name)
        if problem := name_problem("ablation", name):
            raise src.error(base, problem, key=True)
        if not spec.grid and not spec.variants:
            raise src.error(base, "the ablation has no variants: give it a grid: or variants:", key=True)
        if spec.seeds is not None and not spec.seeds:
            raise src.error((*base, "seeds"), "empty list of seeds: leave seeds out or give at least one")
        for i, seed in enumerate(spec.seeds or []):
            if problem := seed_problem(seed):
                raise src.error((*base, "seeds", i), problem)
        for vname in spec.variants:
            if problem := name_problem("variant", vname):
                raise src.error((*base, "variants", vname), problem, key=True)
        _check_size(lab, src, base, spec)
        for key, values in spec.grid.items():
            here = (*base, "grid", key)
            if not values:
                raise src.error(here, "empty grid: give at least one value", shown_key=key)
            layers.require_known(key, lambda p, here=here, key=key: src.error(here, p, shown_key=key, key=True))
            for i, value in enumerate(values):
                problem = layers.check(key, value)
                if problem:
                    raise src.error((*here, i), problem, shown_key=key)
        for vname, overrides in spec.variants.items():
            for key, value in overrides.items():
                here = (*base, "variants", vname, key)
                layers.require_known(key, lambda p, here=here, key=key: src.error(here, p, shown_key=key, key=True))
                problem = layers.check(key, value)
                if problem:
                    raise src.error(here, problem, shown_key=key)
        expanded = expand(lab, project, name)
        names = [v.name for v in expanded]
        runs = [(v.name, v.seed) for v in expanded]
        if len(set(runs)) != len(runs):
            twice = sorted({n for n in runs if runs.count(n) > 1})[0]
            raise src.error(base, f"two variants are both called '{twice[0]}' (a named variant and a grid point?)",
                            key=True)
        if spec.baseline is not None and spec.baseline not in names:
            raise src.error((*base, "baseline"), f"no variant named '{spec.baseline}' in this ablation")


def _check_size(lab: Lab, src: Source, base: tuple[str, str], spec: AblationSpec) -> None:
    """Refuse an ablation above the lab's limit before anything expands it, with the product shown."""
    points, product = grid_size(spec.grid) if spec.grid else (0, "")
    seeds = len(spec.seeds or []) or 1
    runs = (points + len(spec.variants)) * seeds
    limit = lab.config.limits.ablation_runs
    if runs <= limit:
        return
    parts = []
    if spec.grid:
        parts.append(f"a grid of {product} = {points:,} points" if len(spec.grid) > 1 else f"a grid of {points:,}")
    if spec.variants:
        parts.append(f"{len(spec.variants)} named variants")
    how = " + ".join(parts) + (f", × {seeds} seeds" if seeds > 1 else "")
    raise src.error((*base, "grid") if spec.grid else base,
                    f"{how} = {runs:,} runs, above the lab's limit of {limit:,}",
                    hint="shrink the grid, or raise limits: {ablation_runs: N} in lab.yaml", key=not spec.grid)


def find_variant(lab: Lab, project: Project, name: str, ablation: str | None = None) -> list[Variant]:
    """The runs (one per seed) of the variant called `name`."""
    ablations = [ablation] if ablation else list(project.spec.ablations)
    found: dict[str, list[Variant]] = {}
    for a in ablations:
        for v in expand(lab, project, a):
            if v.name == name:
                found.setdefault(a, []).append(v)
    if not found:
        every = sorted({v.name for a in ablations for v in expand(lab, project, a)})
        close = difflib.get_close_matches(name, every, n=1)
        raise UsageError(
            f"project '{project.name}' has no variant '{name}'"
            + (f"; did you mean '{close[0]}'?" if close else "")
            + (f" (variants: {', '.join(every[:12])}{' …' if len(every) > 12 else ''})" if every else ""),
        )
    if len(found) > 1:
        raise UsageError(f"variant '{name}' is in several ablations ({', '.join(found)}): name one with --ablation")
    return next(iter(found.values()))


# ---------------------------------------------------------------- resolution


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"-o {text}: expected key=value, for example -o model.hidden=256")
    return key, parse_scalar(raw)


def base_config(lab: Lab, project: Project) -> dict[str, Any]:
    """The project's config before any variant or override: its defaults, then project.yaml."""
    layers = _Layers(lab, project)
    layers.apply_project()
    return layers.config


def resolve(lab: Lab, project: Project, variant: Variant | None = None,
            overrides: list[str] | None = None, seed: int | None = None) -> Resolved:
    layers = _Layers(lab, project)
    layers.apply_project()
    src = project.source
    if variant is not None:
        where = f"ablation {variant.ablation}, variant {variant.name}"
        for key, value in variant.overrides.items():
            line = variant.lines.get(key, 0)
            layers.set(key, value, f"{src.file}:{line} ({where})",
                       lambda p, key=key, line=line: ConfigError(p, file=src.file, line=line, key=key))
        seed = variant.seed if seed is None else seed
        if variant.seed is not None:
            line = src.line_of(("ablations", variant.ablation or "", "seeds"))
            layers.set("seed", variant.seed, f"{src.file}:{line} (ablation {variant.ablation}, seeds)",
                       lambda p: ConfigError(p, file=src.file, line=line, key="seed"))
    if seed is not None and (variant is None or variant.seed != seed):
        layers.set("seed", seed, f"--seed {seed}", lambda p: UsageError(f"--seed {seed}: seed: {p}"))
    for text in overrides or []:
        key, value = parse_override(text)

        def err(p: str, text: str = text, key: str = key) -> ConfigError:
            return ConfigError(p, file=f"-o {text}", key=key)

        layers.require_known(key, err)
        layers.set(key, value, f"-o {text}", err)
    resolved = Resolved(layers.config, layers.origins)
    if "seed" in resolved.config and (problem := seed_problem(resolved.config["seed"])):
        raise ConfigError(problem, file=resolved.origins.get("seed"), key="seed")
    limits = project.base.limits
    for key, value in resolved.flat().items():  # defaults.yaml's own values did not pass set()
        limit = limits.get(key)
        if isinstance(value, float) and not math.isfinite(value) and (limit is None or limit.finite):
            raise ConfigError(json_problem(value) or "not a finite number", file=resolved.origins.get(key), key=key)
    if limits:
        from fbtui.config.limits import check_limits

        check_limits(limits, resolved.flat(), resolved.origins)
    from fbtui.config.stage_checks import check_components

    check_components(lab, project, resolved.flat(), resolved.origins)
    return resolved
