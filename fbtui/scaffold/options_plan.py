"""From a script's argparse options to a config section and the command that passes it back as flags.

`{flags:SECTION}` renders `key: value` as `--key value` (`_` -> `-` unless the `underscore` modifier),
true as `--key`, false and null as nothing, lists as one flag and its values (`repeat`: the flag once
per value). So each option's key is its flag's spelling, the modifiers follow the script's majority
spelling, and whatever the template cannot say goes into the command, or into a TODO, by name.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from fbtui.scaffold.argparse_reader import BOOL_ACTIONS, Option

KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Options that name where the script writes: pointed under /fb/out, the folder fbtui keeps and reads metrics from
OUT_DIR_RE = re.compile(r"^(out|output|save|log|logging|checkpoint|ckpt|tensorboard|tb|runs?|results?)_?"
                        r"(dir|path|folder|root)$|^(out|output|outdir|logdir)$", re.I)


@dataclass
class Entry:
    key: str
    value: Any
    comment: str = ""


@dataclass
class OptionsPlan:
    section: str
    entries: list[Entry] = field(default_factory=list)  # the section: {flags:SECTION}
    explicit: list[Entry] = field(default_factory=list)  # SECTION_explicit: written out one by one
    modifiers: list[str] = field(default_factory=list)
    seed: int | None = None  # a --seed option: config's top-level seed
    seed_flag: str = "--seed"
    before: list[str] = field(default_factory=list)  # command words before the flags (positionals)
    after: list[str] = field(default_factory=list)  # command words after them
    todos: list[str] = field(default_factory=list)

    @property
    def explicit_section(self) -> str:
        return f"{self.section}_explicit"

    def flags_placeholder(self) -> str:
        mods = f":{','.join(self.modifiers)}" if self.modifiers else ""
        return f"{{flags:{self.section}{mods}}}"


def plan_options(options: list[Option], section: str) -> OptionsPlan:
    plan = OptionsPlan(section)
    candidates: list[tuple[Option, str, str]] = []  # (option, key, spelling: dash, underscore or any)
    for opt in options:
        if opt.dest == "seed" and _seed(plan, opt):
            continue
        if opt.positional:
            _positional(plan, opt)
        elif opt.kind == "custom" or opt.action not in ("store", "append", *BOOL_ACTIONS):
            _inexpressible(plan, opt)
        elif opt.required and not (opt.default_given and opt.default is not None):
            flag = opt.long or opt.strings[0]
            plan.after += [flag, opt.metavar or opt.dest.upper()]
            plan.todos.append(f"{flag} is required and has no default: replace {opt.metavar or opt.dest.upper()} "
                              f"in the command (line {opt.line} of the script)")
        else:
            flag = opt.long
            name = flag[2:] if flag else ""
            key = name.replace("-", "_")
            if not flag or not KEY_RE.match(key):
                _explicit(plan, opt, flag or opt.strings[0], _safe_key(opt.dest))
                continue
            spelling = "dash" if "-" in name else "underscore" if "_" in name else "any"
            if "-" in name and "_" in name:
                spelling = "mixed"
            candidates.append((opt, key, spelling))
    dashes = sum(s == "dash" for _, _, s in candidates)
    underscores = sum(s == "underscore" for _, _, s in candidates)
    style = "underscore" if underscores > dashes else "dash"
    appends = any(o.action == "append" for o, _, _ in candidates)
    nargs_lists = any(o.is_list and o.action != "append" for o, _, _ in candidates)
    if style == "underscore":
        plan.modifiers.append("underscore")
    if appends and not nargs_lists:
        plan.modifiers.append("repeat")
    for opt, key, spelling in candidates:
        odd_spelling = spelling not in ("any", style)
        odd_list = opt.action == "append" and nargs_lists
        if odd_spelling or odd_list:
            _explicit(plan, opt, opt.long or opt.strings[0], key)
        else:
            plan.entries.append(_entry(opt, key))
    return plan


def _entry(opt: Option, key: str) -> Entry:
    value, comment = _value(opt), _comment(opt)
    if OUT_DIR_RE.match(key) and isinstance(value, str) and not value.startswith("/fb/out"):
        rest = value.strip().lstrip("./").rstrip("/") if not value.startswith("/") else value.rstrip("/").split("/")[-1]
        comment = f"under /fb/out, which fbtui keeps (the script's default: {value!r})"
        value = f"/fb/out/{rest}" if rest else "/fb/out"
    return Entry(key, value, comment)


def _seed(plan: OptionsPlan, opt: Option) -> bool:
    if opt.positional or opt.is_list or opt.action != "store" or opt.kind not in ("int", "unknown", "str"):
        return False
    plan.seed = opt.default if isinstance(opt.default, int) and not isinstance(opt.default, bool) else 0
    plan.seed_flag = opt.long or opt.strings[0]
    return True


def _positional(plan: OptionsPlan, opt: Option) -> None:
    if opt.nargs in ("?", "*"):
        plan.todos.append(f"positional argument {opt.dest} is optional and not passed (line {opt.line})")
        return
    word = (opt.metavar or opt.dest).upper()
    plan.before.append(word)
    plan.todos.append(f"positional argument {opt.dest}: replace {word} in the command (line {opt.line})")


def _inexpressible(plan: OptionsPlan, opt: Option) -> None:
    """type= a callable of the script's own, count, store_const and custom actions: not config values."""
    flag = opt.long or opt.strings[0]
    why = f"type={opt.type_text}" if opt.kind == "custom" else f"action={opt.action}"
    if opt.type_text == "bool":  # bool('False') is True: no written value turns it off
        plan.todos.append(f"{flag} (type=bool) reads any text but '' as true: it is not passed; add {flag} 1 to "
                          f"the command to turn it on (line {opt.line})")
    elif opt.kind == "custom" and opt.action == "store" and opt.default_given and opt.default_literal \
            and opt.default is not None and not isinstance(opt.default, (list, tuple, dict)):
        plan.after += [flag, str(opt.default)]
        plan.todos.append(f"{flag} ({why}) is passed as written in the command: {flag} {opt.default} "
                          f"(line {opt.line})")
    elif opt.required:
        plan.after += [flag, opt.metavar or opt.dest.upper()]
        plan.todos.append(f"{flag} ({why}) is required: replace {opt.metavar or opt.dest.upper()} in the command "
                          f"(line {opt.line})")
    else:
        plan.todos.append(f"{flag} ({why}) is not passed (the script's default applies): add it to the command "
                          f"to set it (line {opt.line})")


def _explicit(plan: OptionsPlan, opt: Option, flag: str, key: str) -> None:
    """An option the section's spelling cannot render: a key of SECTION_explicit, written out in the command."""
    value = _value(opt)
    if opt.action != "store" or opt.is_list or value is None or isinstance(value, bool) or not KEY_RE.match(key):
        plan.todos.append(f"{flag} is spelled unlike the other options (or is a list of another kind) and is not "
                          f"passed: add it to the command to set it (line {opt.line})")
        return
    plan.explicit.append(_entry(opt, key))
    plan.after += [flag, f"{{{plan.explicit_section}.{key}}}"]


def _safe_key(dest: str) -> str:
    return re.sub(r"\W", "_", dest)


def _value(opt: Option) -> Any:
    """The default as the config holds it, converted to the option's type where argparse would."""
    if opt.action in BOOL_ACTIONS:
        if opt.action == "store_false":
            return False  # the key is named after the flag (no_compile): false passes nothing
        return opt.default if isinstance(opt.default, bool) else False
    if not opt.default_literal:
        return None
    value = opt.default
    if opt.is_list:
        if value is None:
            return None
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return [_convert(v, opt.kind) for v in items]
    return _convert(value, opt.kind)


def _convert(value: Any, kind: str) -> Any:
    try:
        if kind == "float" and isinstance(value, (int, str)) and not isinstance(value, bool):
            return float(value)
        if kind == "int" and isinstance(value, str):
            return int(value)
    except ValueError:
        pass
    if isinstance(value, tuple):
        return list(value)
    return value


def _comment(opt: Option) -> str:
    parts = []
    if not opt.default_literal:
        parts.append(f"null: the script computes its default ({opt.default_text})")
    elif opt.default is None and opt.action not in BOOL_ACTIONS and opt.kind in ("int", "float", "str"):
        parts.append(f"{opt.kind}, null passes nothing")
    if opt.action == "boolean_optional" and opt.default is True:
        parts.append(f"false passes nothing: add --no-{(opt.long or '')[2:]} to the command to turn it off")
    if opt.choices:
        parts.append("one of " + ", ".join(map(str, opt.choices)))
    if opt.help and "%(" not in opt.help:
        text = " ".join(opt.help.split())
        parts.append(text if len(text) <= 60 else text[:57] + "...")
    return "; ".join(parts)


def command_words(plan: OptionsPlan, script: str) -> str:
    words = ["python3", f"/fb/project/{script}", *plan.before, plan.flags_placeholder(), *plan.after]
    if plan.seed is not None:
        words += [plan.seed_flag, "{seed}"]
    return " ".join(w if w.startswith("{") and w.endswith("}") else shlex.quote(w) for w in words)
