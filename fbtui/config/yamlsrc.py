"""YAML loading that remembers where every key and value came from (file and line)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fbtui.errors import ConfigError

Path_ = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads YAML 1.2 floats such as `3e-4` (YAML 1.1 calls them strings)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


@dataclass
class Source:
    """A loaded YAML document: its data and the line of every key path in it."""

    file: str  # as shown to people: relative to the lab root where possible
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)  # path -> line of the value
    key_lines: dict[Path_, int] = field(default_factory=dict)  # path -> line of the key

    def line_of(self, path: Path_, *, key: bool = False) -> int | None:
        """The line for `path`, or for its nearest ancestor that has one."""
        table = self.key_lines if key else self.lines
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if not key and p in self.key_lines:
                return self.key_lines[p]
            p = p[:-1]
        return self.lines.get((), 1)

    def error(self, path: Path_, problem: str, *, key: bool = False, shown_key: str | None = None,
              hint: str | None = None) -> ConfigError:
        return ConfigError(
            problem,
            file=self.file,
            line=self.line_of(path, key=key),
            key=shown_key if shown_key is not None else dotted(path),
            hint=hint,
        )


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# Budgets: a config file is small. These stop an alias bomb, a recursive alias or absurd nesting
# in well under a second and a few MB, with a line to look at.
MAX_BYTES = 4 * 2**20
MAX_VALUES = 200_000  # values built, aliases expanded
MAX_DEPTH = 64
MAX_SCALAR = 64 * 1024


class _Budget:
    def __init__(self) -> None:
        self.values = 0
        self.building: set[int] = set()  # ids of the nodes being built: an alias back into one is a cycle


def parse_text(text: str, shown: str) -> Source:
    """Parse YAML text; `shown` is the file name used in messages."""
    if len(text) > MAX_BYTES:
        raise ConfigError(f"{len(text) / 2**20:.1f} MB is too large for a config file (at most "
                          f"{MAX_BYTES // 2**20} MB)", file=shown)
    loader = None
    try:
        loader = _Loader(text)  # its reader refuses a NUL byte right here
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        problem = (e.problem or e.context or "invalid YAML").strip()
        if e.problem and e.context and e.context_mark and mark is e.problem_mark and e.context_mark.line != mark.line:
            # an unclosed [ or " is found lines later: where it opened is the line to look at
            problem += f" ({e.context.strip()} at line {e.context_mark.line + 1})"
        raise ConfigError(f"invalid YAML: {problem}", file=shown, line=line) from None
    except yaml.reader.ReaderError as e:  # a NUL byte or another character YAML does not allow
        line = text.count("\n", 0, e.position) + 1
        raise ConfigError(f"invalid YAML: character {e.character!r} is not allowed in a YAML file", file=shown,
                          line=line) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid YAML: {e}", file=shown) from None
    except RecursionError:
        raise ConfigError(f"invalid YAML: nested too deep (at most {MAX_DEPTH} levels)", file=shown) from None
    finally:
        if loader is not None:
            loader.dispose()
    src = Source(file=shown, data=None)
    if node is None:  # empty document
        src.data = {}
        return src
    src.lines[()] = node.start_mark.line + 1
    try:
        src.data = _build(node, (), src, loader, _Budget())  # type: ignore[arg-type]
    except RecursionError:  # a merge key (`<<:`) that includes itself
        raise ConfigError("invalid YAML: a merge key (<<) refers to itself", file=shown) from None
    return src


def load_file(path: Path, shown: str | None = None) -> Source:
    shown = shown or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=shown) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML file", file=shown) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=shown) from None
    return parse_text(text, shown)


def _build(node: yaml.Node, path: Path_, src: Source, loader: _Loader, budget: _Budget) -> Any:
    line = node.start_mark.line + 1
    budget.values += 1
    if budget.values > MAX_VALUES:
        raise ConfigError(f"more than {MAX_VALUES:,} values once aliases are expanded (an alias bomb?)",
                          file=src.file, line=line, key=dotted(path) or None)
    if len(path) > MAX_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=src.file, line=line,
                          key=dotted(path[:3]) + " …")
    if isinstance(node, yaml.CollectionNode):
        if id(node) in budget.building:
            raise ConfigError("an alias refers to a value that contains it (a recursive alias)", file=src.file,
                              line=line, key=dotted(path) or None)
        budget.building.add(id(node))
        try:
            return _build_collection(node, path, src, loader, budget)
        finally:
            budget.building.discard(id(node))
    if isinstance(node, yaml.ScalarNode) and len(node.value) > MAX_SCALAR:
        raise ConfigError(f"a value of {len(node.value):,} characters (at most {MAX_SCALAR:,})", file=src.file,
                          line=line, key=dotted(path) or None)
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(f"invalid value: {e.problem}", file=src.file, line=line, key=dotted(path)) from None
    except (ValueError, OverflowError) as e:  # e.g. an integer of thousands of digits
        raise ConfigError(f"invalid value: {str(e).splitlines()[0][:120]}", file=src.file, line=line,
                          key=dotted(path) or None) from None


def _build_collection(node: yaml.CollectionNode, path: Path_, src: Source, loader: _Loader, budget: _Budget) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<:` merge keys
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "a mapping key must be a plain value, not a list or mapping",
                    file=src.file, line=key_node.start_mark.line + 1, key=dotted(path) or None,
                )
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                key = str(key)  # `1: x` or `true: x`: keys are names here
            sub = (*path, key)
            if key in out:
                raise ConfigError(
                    f"duplicate key (first defined on line {src.key_lines[sub]})",
                    file=src.file, line=key_node.start_mark.line + 1, key=dotted(sub),
                )
            src.key_lines[sub] = key_node.start_mark.line + 1
            # A nested block starts on the line after its key; people look for the key.
            collection = isinstance(value_node, yaml.CollectionNode)
            src.lines[sub] = (key_node if collection else value_node).start_mark.line + 1
            out[key] = _build(value_node, sub, src, loader, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            sub = (*path, i)
            src.lines[sub] = item.start_mark.line + 1
            items.append(_build(item, sub, src, loader, budget))
        return items
    raise ConfigError("unknown YAML node", file=src.file, line=node.start_mark.line + 1, key=dotted(path) or None)


def parse_scalar(text: str) -> Any:
    """A command-line value read the way YAML reads it: `256` is an int, `3e-4` a float, `a,b` a string."""
    try:
        return yaml.load(text, Loader=_Loader) if text.strip() else ""
    except yaml.YAMLError:
        return text
