"""Metric patterns for a stage's `metrics: stdout:`, derived from the script's own log lines (best effort).

`print(f"step {step} | loss {loss:.4f}")` becomes `step (?P<step>\\d+) \\| loss (?P<loss>[-+0-9.eE]+)`:
each formatted value becomes a named group, named after the word in front of it (`loss`), or two
words when one is taken (`train loss`, `val loss`), or else the expression (`losses['val']` -> val).
f-strings, `%` formats (print and logging calls) and `str.format` are read; nothing is run.
"""

from __future__ import annotations

import ast
import re
import string
from dataclasses import dataclass

NUMBER = r"[-+0-9.eE]+"
MAX_PATTERNS = 4
# Calls whose text reaches stdout/stderr: print, logging, tqdm.write, rich's console.print.
LOG_CALLS = {"print", "info", "debug", "warning", "warn", "error", "critical", "log", "write"}
STEP_RE = re.compile(r"^(global_?)?(step|steps|iter|iters|iteration|iterations|it|itr|iter_num|update|updates)$"
                     r"|step|iter", re.I)
EPOCH_RE = re.compile(r"epoch", re.I)
WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
WIDTH_RE = re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?[1-9]")  # a format spec with a width: values may be padded
PERCENT_RE = re.compile(r"%(\(\w+\))?[-#0 +]*(\*|\d+)?(\.\d+)?[hlL]?([diouxXeEfFgGcrsa%])")


@dataclass
class Field:
    before: str  # the literal text in front of it
    expr: ast.AST | None
    numeric: bool
    padded: bool  # a width in the format spec: the value may be preceded by spaces


def stdout_patterns(tree: ast.Module) -> list[str]:
    """Regular expressions (with a `step` group) for the script's metric lines, at most MAX_PATTERNS."""
    found: list[str] = []
    calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset))
    for call in calls:
        name = call.func.id if isinstance(call.func, ast.Name) else (
            call.func.attr if isinstance(call.func, ast.Attribute) else None)
        if name not in LOG_CALLS or not call.args:
            continue
        parts = _segments(call)
        pattern = _pattern(parts) if parts else None
        if pattern and pattern not in found:
            found.append(pattern)
        if len(found) == MAX_PATTERNS:
            break
    return found


Segment = str | Field


def _segments(call: ast.Call) -> list[Segment] | None:
    first = call.args[0]
    if isinstance(first, ast.JoinedStr):
        return _fstring(first)
    if isinstance(first, ast.BinOp) and isinstance(first.op, ast.Mod) and _is_text(first.left):
        right = first.right
        args = list(right.elts) if isinstance(right, ast.Tuple) else [right]
        return _percent(first.left.value, args)  # type: ignore[attr-defined]
    if _is_text(first) and len(call.args) > 1:  # logging: logger.info("step %d loss %.3f", step, loss)
        return _percent(first.value, list(call.args[1:]))  # type: ignore[attr-defined]
    if (isinstance(first, ast.Call) and isinstance(first.func, ast.Attribute) and first.func.attr == "format"
            and _is_text(first.func.value)):
        return _format(first.func.value.value, first)  # type: ignore[attr-defined]
    return None


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _fstring(node: ast.JoinedStr) -> list[Segment]:
    out: list[Segment] = []
    text = ""
    for value in node.values:
        if isinstance(value, ast.Constant):
            text += str(value.value)
            continue
        assert isinstance(value, ast.FormattedValue)
        spec = ""
        if isinstance(value.format_spec, ast.JoinedStr):
            spec = "".join(str(v.value) if isinstance(v, ast.Constant) else "9" for v in value.format_spec.values)
        numeric = value.conversion == -1 and not spec.endswith(("s", "c"))
        out += [text, Field(text, value.value, numeric, bool(WIDTH_RE.match(spec)))]
        text = ""
    return [*out, text]


def _percent(fmt: str, args: list[ast.expr]) -> list[Segment] | None:
    out: list[Segment] = []
    pos, index = 0, 0
    for m in PERCENT_RE.finditer(fmt):
        if m.group(4) == "%":
            continue
        text = fmt[pos:m.start()].replace("%%", "%")
        expr = args[index] if index < len(args) and not m.group(1) else None
        index += 0 if m.group(1) else 1
        out += [text, Field(text, expr, m.group(4) not in "cr", bool(m.group(2)))]
        pos = m.end()
    return [*out, fmt[pos:].replace("%%", "%")]


def _format(fmt: str, call: ast.Call) -> list[Segment] | None:
    kws = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    out: list[Segment] = []
    auto = 0
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError:
        return None
    for text, name, spec, conversion in parsed:
        if name is None:
            out.append(text)
            continue
        if name == "":
            expr: ast.AST | None = call.args[auto] if auto < len(call.args) else None
            auto += 1
        elif name.isdigit():
            expr = call.args[int(name)] if int(name) < len(call.args) else None
        else:
            expr = kws.get(name.split(".")[0].split("[")[0])
        spec = spec or ""
        out += [text, Field(text, expr, conversion is None and not spec.endswith(("s", "c")),
                            bool(WIDTH_RE.match(spec)))]
    return out


def _expr_name(node: ast.AST | None) -> str | None:
    """`loss` for loss, loss.item(), self.loss, float(loss), losses['loss'], dt*1000."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr if node.attr not in ("item", "mean") else _expr_name(node.value)
    if isinstance(node, ast.Call):
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("item", "mean", "tolist", "cpu"):
            return _expr_name(node.func.value)
        return _expr_name(node.args[0]) if node.args else None
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            return key.value
        return _expr_name(node.value)
    if isinstance(node, ast.BinOp):
        return _expr_name(node.left) or _expr_name(node.right)
    return None


def _label(before: str, words: int) -> str | None:
    """The last `words` words of the text in front of a value, when only separators follow them."""
    found = list(WORD_RE.finditer(before))
    if len(found) < words or before[found[-1].end():].strip(" \t:=|,;-[(") != "":
        return None
    return "_".join(m.group(0) for m in found[-words:])


def _group(name: str | None) -> str | None:
    if not name:
        return None
    name = re.sub(r"\W+", "_", name).strip("_")
    return name if name and not name[0].isdigit() else None


def _pattern(parts: list[Segment]) -> str | None:
    fields = [p for p in parts if isinstance(p, Field)]
    numeric = [f for f in fields if f.numeric and not f.before.endswith("/")]  # `{step}/{max_steps}`: a total
    step = next((f for f in numeric if _is_step(f, STEP_RE)), None) or next(
        (f for f in numeric if _is_step(f, EPOCH_RE)), None)
    metrics = [f for f in numeric if f is not step]
    if step is None or not metrics:
        return None
    names: dict[int, str] = {id(step): "step"}
    taken = {"step", "name", "value"}  # name/value: the templates' pair form, not metric keys
    for f in metrics:
        one = _group(_label(f.before, 1))
        candidates = [one if one and one not in taken and sum(
            _group(_label(g.before, 1)) == one for g in metrics) == 1 else None,
            _group(_label(f.before, 2)), _group(_expr_name(f.expr)), one]
        name = next((c for c in candidates if c and c not in taken), None)
        if name is None:
            base = one or _group(_expr_name(f.expr)) or "value"
            name = next(f"{base}_{i}" for i in range(2, 100) if f"{base}_{i}" not in taken)
        names[id(f)] = name
        taken.add(name)
    out = ""
    last = 0  # the pattern ends at its last group: what follows may vary (units, padding)
    for p in parts:
        if isinstance(p, str):
            out += re.escape(p).replace("\\ ", " ")  # spaces need no escape and read better bare
        elif id(p) in names:
            value = r"\d+" if p is step else NUMBER
            out += (" *" if p.padded else "") + f"(?P<{names[id(p)]}>{value})"
            last = len(out)
        elif p.numeric:
            out += NUMBER
        else:
            out += ".*?"
    out = out[:last].removeprefix(".*?")
    try:
        compiled = re.compile(out)
    except re.error:
        return None
    if "step" not in compiled.groupindex or any(c in out for c in "\n\r\t\x00"):
        return None
    return out


def _is_step(f: Field, rule: re.Pattern[str]) -> bool:
    return any(name and rule.search(name) for name in (_expr_name(f.expr), _label(f.before, 1)))
