"""Command and env templates, rendered per run from its resolved config, and stdout metric patterns.

    command: python3 train.py {flags:train} --seed {seed} --out-dir {out} --data {in.prepare}

`{a.b}` is a config value; `{seed}` too. `{out}` is /fb/out, `{in.STAGE}` /fb/in/STAGE (a stage it
needs), `{project}` /fb/project, `{config}` /fb/config.yaml. `{flags:SECTION}` stands alone as one
command word and becomes `--key value` words for each key of a config section: `n_embd` -> `--n-embd`,
true -> `--flag`, false and null -> nothing, a list -> the flag then each value (argparse's nargs).
Modifiers after a second colon, comma-separated: `underscore` keeps `_` in flag names, `repeat` gives
a list as a repeated flag (argparse's action="append"), `comma` joins a list with commas.
`{{` and `}}` are literal braces.
"""

from __future__ import annotations

import json
import re
from typing import Any

FIELD_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
FLAG_MODIFIERS = ("underscore", "repeat", "comma")
PATHS = {"out": "/fb/out", "project": "/fb/project", "config": "/fb/config.yaml"}


class TemplateError(ValueError):
    """A placeholder that cannot be rendered: the message says which and why. `null`: the key is
    there but has no value (a variant or `-o` may still give it one)."""

    def __init__(self, message: str, *, null: bool = False) -> None:
        super().__init__(message)
        self.null = null


def fields(text: str) -> list[str]:
    """The placeholders of one command word, in order; raises TemplateError on a stray brace."""
    out = []
    for m in FIELD_RE.finditer(text):
        token = m.group(0)
        if token in ("{{", "}}"):
            continue
        if m.group(1) is None:
            raise TemplateError(f"a lone '{token}' in {text!r}: write {token * 2} for a literal brace")
        name = m.group(1).strip()
        if not name:
            raise TemplateError(f"an empty placeholder {{}} in {text!r}")
        out.append(name)
    return out


def _scalar(value: Any, name: str) -> str:
    if value is None:
        raise TemplateError(f"{{{name}}} is null in the run's config: give it a value, or leave it out of the "
                            "command", null=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def _unknown(config: dict[str, Any], dotted: str) -> TemplateError:
    import difflib

    from fbtui.config.resolve import flatten

    keys = sorted({*flatten(config), *config})
    close = difflib.get_close_matches(dotted, keys, n=1)
    return TemplateError(f"{{{dotted}}}: no such key in the run's config" +
                         (f"; did you mean {{{close[0]}}}?" if close else ""))


def flag_words(section: dict[str, Any], modifiers: set[str], where: str) -> list[str]:
    words: list[str] = []
    for key, value in section.items():
        flag = "--" + (key if "underscore" in modifiers else key.replace("_", "-"))
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, dict):
            raise TemplateError(f"{{{where}}}: {key} is a mapping; name its keys in the command instead")
        elif isinstance(value, list):
            items = [_scalar(v, f"{where}.{key}") for v in value]
            if "comma" in modifiers:
                words += [flag, ",".join(items)]
            elif "repeat" in modifiers:
                for item in items:
                    words += [flag, item]
            elif items:
                words += [flag, *items]
        else:
            words += [flag, _scalar(value, key)]
    return words


def _flags(name: str, config: dict[str, Any]) -> list[str]:
    parts = name.split(":")
    section = parts[1].strip() if len(parts) > 1 else ""
    modifiers = {m.strip() for m in parts[2].split(",")} if len(parts) > 2 else set()
    if len(parts) > 3 or not section:
        raise TemplateError(f"{{{name}}}: expected {{flags:SECTION}} or {{flags:SECTION:MODIFIERS}}")
    if bad := sorted(modifiers - set(FLAG_MODIFIERS)):
        raise TemplateError(f"{{{name}}}: unknown modifier '{bad[0]}' (modifiers: {', '.join(FLAG_MODIFIERS)})")
    try:
        value = _lookup(config, section)
    except KeyError:
        raise _unknown(config, section) from None
    if not isinstance(value, dict):
        raise TemplateError(f"{{{name}}}: {section} is not a section (a mapping) of the run's config")
    return flag_words(value, modifiers, name)


def render_word(word: str, config: dict[str, Any], needs: list[str]) -> list[str]:
    """One command word -> the words it renders to (a `{flags:…}` word may give several or none)."""
    names = fields(word)
    if len(names) == 1 and word.strip() == "{" + names[0] + "}" and names[0].split(":")[0].strip() == "flags":
        return _flags(names[0], config)

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = m.group(1).strip()
        if name.split(":")[0].strip() == "flags":
            raise TemplateError(f"{{{name}}} must be a command word of its own (it gives several words)")
        if name in PATHS:
            return PATHS[name]
        if name.startswith("in."):
            stage = name[3:]
            if stage not in needs:
                raise TemplateError(f"{{{name}}}: this stage does not read stage '{stage}' (it needs: "
                                    f"{', '.join(needs) or 'no stage'})")
            return f"/fb/in/{stage}"
        try:
            return _scalar(_lookup(config, name), name)
        except KeyError:
            raise _unknown(config, name) from None

    return [FIELD_RE.sub(one, word)]


def render_command(command: list[str], config: dict[str, Any], needs: list[str]) -> list[str]:
    out: list[str] = []
    for word in command:
        out += render_word(word, config, needs)
    return out


def render_env(env: dict[str, str], config: dict[str, Any], needs: list[str]) -> dict[str, str]:
    out = {}
    for name, text in env.items():
        words = render_word(text, config, needs) if "{" in text or "}" in text else [text]
        if len(words) != 1:
            raise TemplateError(f"env {name}: {{flags:…}} gives several words; an env value is one")
        out[name] = words[0]
    return out


# ------------------------------------------------------------ stdout patterns

GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def pattern_problem(pattern: str) -> str | None:
    """Why a stdout metric pattern cannot work, or None."""
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        return f"not a valid regular expression ({e}): {pattern!r}"
    groups = set(compiled.groupindex)
    if "step" not in groups:
        return f"a pattern needs a (?P<step>...) group for the step: {pattern!r}"
    if ("name" in groups) != ("value" in groups):
        return f"a (?P<name>...) group needs a (?P<value>...) group with it, and the other way round: {pattern!r}"
    if not groups - {"step"}:
        return (f"a pattern needs a named group per metric, such as (?P<loss>[0-9.]+), or a name/value pair: "
                f"{pattern!r}")
    return None
