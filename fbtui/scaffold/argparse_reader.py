"""A script's argparse options, read from its source with `ast`: the script is never run or imported.

Every `X.add_argument(...)` call counts (parsers, groups, subparsers alike); values that are not
literals (`default=os.cpu_count()`) are kept as their source text, so the scaffold can say so.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fbtui.errors import UsageError

# type= values the config can hold as such; pathlib.Path reads text, so it is text here.
KNOWN_TYPES = {"int": "int", "float": "float", "str": "str", "Path": "str", "pathlib.Path": "str"}
BOOL_ACTIONS = ("store_true", "store_false", "boolean_optional")


@dataclass
class Option:
    """One add_argument call, as far as its source says."""

    strings: list[str]  # option strings as written (['-l', '--lr']); empty for a positional
    dest: str
    line: int
    action: str = "store"  # argparse's name, 'boolean_optional', or 'custom' for a class we cannot read
    kind: str = "unknown"  # int, float, str, custom (type= a callable we cannot express), unknown
    type_text: str | None = None
    default: Any = None
    default_given: bool = False
    default_literal: bool = True  # False: default= is an expression (kept in default_text)
    default_text: str | None = None
    nargs: Any = None
    choices: list[Any] | None = None
    help: str | None = None
    required: bool = False
    metavar: str | None = None

    @property
    def positional(self) -> bool:
        return not self.strings

    @property
    def long(self) -> str | None:
        """The first `--name` spelling, or None (a short `-x` alone)."""
        return next((s for s in self.strings if s.startswith("--") and len(s) > 2), None)

    @property
    def is_list(self) -> bool:
        return self.action == "append" or self.nargs in ("+", "*") or (isinstance(self.nargs, int) and self.nargs > 1)


@dataclass
class ParserInfo:
    has_parser: bool
    options: list[Option] = field(default_factory=list)
    subcommands: bool = False


def parse_script(path: Path) -> ast.Module:
    """The script's syntax tree; a syntax error is a usage error naming file:line."""
    try:
        source = path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        return ast.parse(source, filename=str(path))  # bytes: a coding cookie is honoured
    except SyntaxError as e:
        where = f"{path}:{e.lineno}" if e.lineno else str(path)
        raise UsageError(f"{where}: syntax error: {e.msg} (fix the script, then run fbtui new again)") from None
    except ValueError as e:  # null bytes on older Pythons
        raise UsageError(f"{path}: not Python source: {e}") from None


def read_parser(tree: ast.Module) -> ParserInfo:
    """Every add_argument call in source order, with set_defaults applied."""
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    info = ParserInfo(has_parser=False)
    overrides: dict[str, Any] = {}
    for call in calls:
        name = _called_name(call)
        if name == "ArgumentParser":
            info.has_parser = True
        elif name == "add_subparsers":
            info.subcommands = True
        elif name == "add_argument" and isinstance(call.func, ast.Attribute):
            option = _option(call)
            if option is not None:
                info.options.append(option)
        elif name == "set_defaults":
            for kw in call.keywords:
                ok, value = _literal(kw.value)
                if kw.arg and ok:
                    overrides[kw.arg] = value
    for option in info.options:
        if option.dest in overrides:
            option.default, option.default_given, option.default_literal = overrides[option.dest], True, True
    info.has_parser = info.has_parser or bool(info.options)
    return info


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _option(call: ast.Call) -> Option | None:
    strings: list[str] = []
    for arg in call.args:
        ok, value = _literal(arg)
        if not ok or not isinstance(value, str):
            return None  # option strings built at run time: nothing to read
        strings.append(value)
    if not strings:
        return None
    kws = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    positional = not strings[0].startswith("-")
    dest = _text(kws.get("dest"))
    if dest is None:
        if positional:
            dest = strings[0]
        else:
            first = next((s for s in strings if s.startswith("--")), strings[0])
            dest = first.lstrip("-").replace("-", "_")
    opt = Option(strings=[] if positional else strings, dest=dest, line=call.lineno)
    opt.action = _action(kws.get("action"))
    if opt.action in ("help", "version"):
        return None
    _read_type(opt, kws.get("type"))
    if "default" in kws:
        opt.default_given = True
        ok, value = _literal(kws["default"])
        opt.default_literal, opt.default = ok, value
        if not ok:
            opt.default_text = ast.unparse(kws["default"])
    for key in ("nargs", "choices", "help", "required", "metavar"):
        if key in kws:
            ok, value = _literal(kws[key])
            if ok:
                setattr(opt, key, list(value) if key == "choices" and isinstance(value, (list, tuple)) else value)
    if opt.kind == "unknown" and opt.choices:
        opt.kind = _kind_of(opt.choices[0])
    if opt.kind == "unknown" and opt.default_given and opt.default_literal:
        sample = opt.default[0] if isinstance(opt.default, (list, tuple)) and opt.default else opt.default
        opt.kind = _kind_of(sample)
    if opt.kind == "unknown" and opt.action in ("store", "append") and not opt.type_text:
        opt.kind = "str"  # argparse hands over text when no type= is given
    return opt


def _text(node: ast.AST | None) -> str | None:
    if node is None:
        return None
    ok, value = _literal(node)
    return value if ok and isinstance(value, str) else None


def _action(node: ast.AST | None) -> str:
    if node is None:
        return "store"
    text = _text(node)
    if text is not None:
        return text
    name = ast.unparse(node)
    return "boolean_optional" if name.split(".")[-1] == "BooleanOptionalAction" else "custom"


def _read_type(opt: Option, node: ast.AST | None) -> None:
    if node is None:
        return
    opt.type_text = ast.unparse(node)
    # type=bool reads any non-empty text as True ('--flag False' is True): not a value we can pass
    opt.kind = KNOWN_TYPES.get(opt.type_text, "custom")


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "unknown"
