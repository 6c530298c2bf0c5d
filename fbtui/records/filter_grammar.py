"""The grammar of filter expressions (#14): tokens, a recursive-descent parser and its errors,
one line each with the column. Resolving names and evaluating is fbtui/records/filters.py.

    expr := and ('or' and)* ; and := not ('and' not)* ; not := ('not' | '!') not | atom
    atom := '(' expr ')' | NAME OP VALUE | NAME     (OP: = == != < <= > >= ~; VALUE bare or quoted)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fbtui.errors import UsageError

OPS = ("!=", "<=", ">=", "==", "=", "<", ">", "~")
FIELDS = {"status": "enum", "tag": "tags", "tags": "tags", "archived": "bool", "project": "text",
          "ablation": "text", "variant": "text", "host": "text", "note": "text", "seed": "int", "id": "int",
          "run": "int"}
STATUSES = ("pending", "queued", "running", "succeeded", "failed", "cancelled")
WORD = re.compile(r"[^\s()=!<>~'\"]+")


class FilterError(UsageError):
    """A filter that does not parse or names nothing known; `pos` is where (0-based), if known."""

    def __init__(self, text: str, problem: str, pos: int | None = None) -> None:
        self.text, self.problem, self.pos = text, problem, pos
        where = ""
        if pos is not None:
            rest = text[pos:].strip()
            where = f" at column {pos + 1} ({'here: ' + repr(rest[:30]) if rest else 'at the end'})"
        super().__init__(f"filter {text!r}: {problem}{where}",
                         hint="e.g. 'lr<0.01 and eval/accuracy>0.9', 'status=failed or tag=baseline', "
                              "'not archived'")


# ------------------------------------------------------------ parsing


@dataclass
class Tok:
    kind: str  # "word", "str", "op", "(", ")", "not", "end"
    text: str
    pos: int


@dataclass
class Cmp:
    name: str
    op: str  # "" for a bare name (archived)
    value: Tok | None
    pos: int


@dataclass
class Bool:
    op: str  # "and", "or", "not"
    args: list[Any] = field(default_factory=list)


def _tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append(Tok(ch, ch, i))
            i += 1
        elif ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                raise FilterError(text, f"the string opened with {ch} is not closed", i)
            out.append(Tok("str", text[i + 1:end], i))
            i = end + 1
        elif ch == "!" and text[i + 1:i + 2] != "=":
            out.append(Tok("not", "!", i))
            i += 1
        elif any(text.startswith(op, i) for op in OPS):
            op = next(op for op in OPS if text.startswith(op, i))
            out.append(Tok("op", "=" if op == "==" else op, i))
            i += len(op)
        else:
            m = WORD.match(text, i)
            assert m is not None  # every other character starts a word
            word = m.group()
            kw = word.lower()
            out.append(Tok(kw if kw in ("and", "or", "not") else "word", word, i))
            i = m.end()
    out.append(Tok("end", "", n))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i = text, _tokens(text), 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def fail(self, problem: str, tok: Tok) -> FilterError:
        return FilterError(self.text, problem, tok.pos)

    def parse(self) -> Any:
        if self.peek().kind == "end":
            raise FilterError(self.text, "it is empty")
        node = self.or_()
        tok = self.peek()
        if tok.kind != "end":
            what = "a ')' without its '('" if tok.kind == ")" else f"expected 'and' or 'or' before {tok.text!r}"
            raise self.fail(what, tok)
        return node

    def or_(self) -> Any:
        args = [self.and_()]
        while self.peek().kind == "or":
            self.take()
            args.append(self.and_())
        return args[0] if len(args) == 1 else Bool("or", args)

    def and_(self) -> Any:
        args = [self.not_()]
        while self.peek().kind == "and":
            self.take()
            args.append(self.not_())
        return args[0] if len(args) == 1 else Bool("and", args)

    def not_(self) -> Any:
        if self.peek().kind == "not":
            self.take()
            return Bool("not", [self.not_()])
        return self.atom()

    def atom(self) -> Any:
        tok = self.take()
        if tok.kind == "(":
            node = self.or_()
            close = self.take()
            if close.kind != ")":
                raise self.fail(f"the '(' at column {tok.pos + 1} is not closed: expected ')'", close)
            return node
        if tok.kind != "word":
            what = "the end" if tok.kind == "end" else repr(tok.text)
            raise self.fail(f"expected a name such as status, tag or a param or metric key, not {what}", tok)
        if self.peek().kind != "op":
            return Cmp(tok.text, "", None, tok.pos)  # a bare name: a yes/no field (archived)
        op = self.take()
        value = self.take()
        if value.kind not in ("word", "str"):
            raise self.fail(f"expected a value after {op.text!r}", value)
        return Cmp(tok.text, op.text, value, tok.pos)


def parse(text: str) -> Any:
    return _Parser(text).parse()


def names(node: Any) -> list[Cmp]:
    """Every comparison in the expression, left to right."""
    if isinstance(node, Cmp):
        return [node]
    return [c for a in node.args for c in names(a)]
