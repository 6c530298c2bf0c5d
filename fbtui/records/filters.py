"""Filter expressions over runs (#14): `lr<0.01 and eval/accuracy>0.9`, `status=failed`,
`tag=baseline`, `not archived`, `or`, parentheses, `=` `!=` `<` `<=` `>` `>=` and `~` (contains).

A name is a run field (status, tag, archived, project, ablation, variant, seed, host, note, id), a
param key (the full dotted key, or a unique suffix: `lr` is `optim.lr`), or a final metric key
(`eval/accuracy`, from run_metrics). A run without the key matches no comparison on it (as SQL's
NULL); `not lr=0.1` takes those too. The expression is parsed and its names resolved once, then
compiled: each comparison is made once over its column (the params and metrics it names only,
read by index) and the results combined as sets, so 10,000 runs filter in a few tens of
milliseconds (bench/filters.py). A compiled Filter also takes one row at a time (the app's rows).
The grammar is in fbtui/records/filter_grammar.py.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fbtui.records.filter_grammar import FIELDS, STATUSES, Bool, Cmp, FilterError, Tok, names, parse

if TYPE_CHECKING:
    from fbtui.store import Store

__all__ = ["Filter", "FilterError", "compile_filter", "parse", "select"]
Row = dict[str, Any]
Test = Callable[[Any], bool]

# ------------------------------------------------------------ resolving and compiling


def _number(tok: Tok) -> float | None:
    if tok.kind != "word":
        return None
    try:
        return float(tok.text)
    except ValueError:
        return None


def _resolve(text: str, c: Cmp, params: Collection[str], metrics: Collection[str],
             suggest: Collection[str] = ()) -> tuple[str, str]:
    """(kind, key): kind is a FIELDS kind, "param" or "metric"."""
    name = c.name
    if name.lower() in FIELDS:
        return FIELDS[name.lower()], name.lower()
    exact = [("param", name)] * (name in params) + [("metric", name)] * (name in metrics)
    if len(exact) == 1:
        return exact[0]
    if exact:
        raise FilterError(text, f"{name!r} is both a param and a metric: write param:{name} or metric:{name}", c.pos)
    for prefix, kind, keys in (("param:", "param", params), ("metric:", "metric", metrics)):
        if name.startswith(prefix):
            key = name[len(prefix):]
            if key not in keys:
                raise FilterError(text, f"no {kind} {key!r} in these runs", c.pos)
            return kind, key
    found = [("param", k) for k in params if k.endswith("." + name)] + \
        [("metric", k) for k in metrics if k.endswith("/" + name)]
    if len(found) == 1:
        return found[0]
    if found:
        raise FilterError(text, f"{name!r} is ambiguous: " + ", ".join(sorted(k for _, k in found))
                          + " (write the full key)", c.pos)
    every = [*FIELDS, *params, *metrics, *suggest]
    short = {k.rsplit(".", 1)[-1].rsplit("/", 1)[-1]: k for k in every}  # lr -> optim.lr
    close = list(dict.fromkeys([*difflib.get_close_matches(name, every, n=3),
                                *(short[k] for k in difflib.get_close_matches(name, list(short), n=2))]))[:3]
    raise FilterError(text, f"no field, param or metric {name!r} in these runs"
                      + (f" (did you mean {', '.join(close)}?)" if close else ""), c.pos)


def _order(op: str) -> Callable[[Any, Any], bool]:
    return {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b}[op]


def _equal(value: Any, tok: Tok) -> bool:
    """A param's value (decoded JSON) against a literal: numbers as numbers, yes/no as true/false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return tok.text.lower() == str(value).lower()
    if isinstance(value, (int, float)):
        num = _number(tok)
        return num is not None and float(value) == num
    if isinstance(value, str):
        return value == tok.text
    return json.dumps(value, sort_keys=True) == tok.text


def _test(text: str, c: Cmp, kind: str, key: str) -> Test:
    """The test a comparison makes of a value that is there (a run without it never matches):
    tags get the run's list of tags, archived a yes/no."""
    op, tok = c.op, c.value
    if kind == "bool":
        if op == "":
            return bool
        want = tok.text.lower() if tok else ""
        if op not in ("=", "!=") or want not in ("true", "false", "yes", "no"):
            raise FilterError(text, f"{key} is yes or no: write '{key}' or 'not {key}'", c.pos)
        yes = (want in ("true", "yes")) == (op == "=")
        return lambda v: bool(v) == yes
    if tok is None:
        raise FilterError(text, f"{c.name!r} needs a comparison, e.g. {c.name}=VALUE", c.pos)
    value = tok.text
    if kind == "tags":
        if op == "~":
            return lambda v: any(value in t for t in v)
        if op not in ("=", "!="):
            raise FilterError(text, "tags compare with =, != or ~ (contains)", tok.pos)
        return (lambda v: value in v) if op == "=" else (lambda v: value not in v)
    if kind in ("enum", "text"):
        if kind == "enum" and op != "~" and value not in STATUSES:
            raise FilterError(text, f"status is one of {', '.join(STATUSES)}, not {value!r}", tok.pos)
        if op == "~":
            low = value.lower()
            return lambda v: low in str(v).lower()
        if op in ("=", "!="):
            return (lambda v: v == value) if op == "=" else (lambda v: v != value)
        raise FilterError(text, f"{key} compares with =, != or ~ (contains)", tok.pos)
    num = _number(tok)
    if kind in ("int", "metric"):
        if num is None or op == "~":
            raise FilterError(text, f"{c.name} is a number: compare it with a number", tok.pos)
        if op in ("=", "!="):
            return (lambda v: float(v) == num) if op == "=" else (lambda v: float(v) != num)
        cmp = _order(op)
        return lambda v: cmp(float(v), num)
    # a param: any JSON value
    if op == "~":
        return lambda v: value.lower() in str(v).lower()
    if op in ("=", "!="):
        same = op == "="
        return lambda v: _equal(v, tok) == same
    cmp = _order(op)

    def ordered(v: Any) -> bool:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return num is not None and cmp(float(v), num)
        return isinstance(v, str) and num is None and cmp(v, value)

    return ordered


@dataclass
class Leaf:
    source: str  # "field" (a column of runs), "param", "metric" or "tags"
    key: str
    test: Test


FIELD_COLUMN = {"run": "id", "archived": "archived_at"}  # a field that is not its column's name


@dataclass
class Filter:
    """A compiled expression: call it on one row (a runs row with `tags`, `params` and `metrics`
    dicts: the app's rows), or `matching(...)` over columns (every run at once, as select does)."""

    text: str
    tree: Any  # Bool nodes over Leaf
    params: list[str]  # the param keys it reads
    metrics: list[str]  # the final metrics it reads
    fields: list[str]  # the runs columns it reads
    tags: bool  # whether it reads tags
    archived: bool  # whether it names `archived` (then archived runs are not hidden by default)

    def __call__(self, row: Row) -> bool:
        return self._row(self.tree, row)

    def _row(self, node: Any, row: Row) -> bool:
        if isinstance(node, Leaf):
            if node.source == "field":
                v = row.get(node.key) if node.key != "archived" else row.get("archived_at") is not None
            elif node.source == "tags":
                v = row.get("tags") or ()
            else:
                v = (row.get(node.source + "s") or {}).get(node.key)
            return v is not None and node.test(v)
        if node.op == "not":
            return not self._row(node.args[0], row)
        if node.op == "and":
            return all(self._row(a, row) for a in node.args)
        return any(self._row(a, row) for a in node.args)

    def matching(self, rows: list[Row], params: dict[str, dict[int, Any]], metrics: dict[str, dict[int, Any]],
                 tags: dict[int, list[str]]) -> list[int]:
        """The ids of these rows (in their order) that match, each comparison made once per run
        over its column (a set per comparison, combined as sets: no per-row dispatch)."""
        every = {r["id"] for r in rows}

        def ids(node: Any) -> set[int]:
            if isinstance(node, Leaf):
                t = node.test
                if node.source == "field":
                    if node.key == "archived":
                        return {r["id"] for r in rows if t(r["archived_at"] is not None)}
                    col = FIELD_COLUMN.get(node.key, node.key)
                    return {r["id"] for r in rows if (v := r[col]) is not None and t(v)}
                if node.source == "tags":
                    return {rid for rid in every if t(tags.get(rid, ()))}
                column = (params if node.source == "param" else metrics)[node.key]
                return {rid for rid, v in column.items() if v is not None and t(v)} & every
            sets = [ids(a) for a in node.args]
            if node.op == "not":
                return every - sets[0]
            if node.op == "and":
                return set.intersection(*sets)
            return set.union(*sets)

        found = ids(self.tree)
        return [r["id"] for r in rows if r["id"] in found]


def compile_filter(text: str, params: Collection[str], metrics: Collection[str],
                   suggest: Collection[str] = ()) -> Filter:
    """Parse `text` and resolve its names against these param and metric keys (`suggest`: other
    keys a misspelt name may be offered)."""
    used: dict[str, set[str]] = {"param": set(), "metric": set(), "field": set(), "tags": set()}

    def build(node: Any) -> Any:
        if isinstance(node, Cmp):
            kind, key = _resolve(text, node, params, metrics, suggest)
            source = kind if kind in ("param", "metric") else "tags" if kind == "tags" else "field"
            key = "tags" if kind == "tags" else key
            used[source].add(key)
            return Leaf(source, key, _test(text, node, kind, key))
        return Bool(node.op, [build(a) for a in node.args])

    tree = build(parse(text))
    fields = sorted({FIELD_COLUMN.get(k, k) for k in used["field"]})
    return Filter(text, tree, sorted(used["param"]), sorted(used["metric"]), fields, bool(used["tags"]),
                  "archived" in used["field"])


# ------------------------------------------------------------ over a store


def _all_keys(store: Store, table: str) -> list[str]:
    """Every distinct key of params or run_metrics: one index probe per key (a skip-scan of the
    (key, value) index), never a pass over every row."""
    return [r["key"] for r in store.query(
        f"WITH RECURSIVE k(key) AS (SELECT MIN(key) FROM {table} UNION ALL SELECT (SELECT MIN(key) FROM {table} "
        "WHERE key > k.key) FROM k WHERE k.key IS NOT NULL) SELECT key FROM k WHERE key IS NOT NULL")]


def _relevant(store: Store, table: str, tree: Any, project: str | None) -> tuple[list[str], list[str]]:
    """(the keys the expression's names may mean, in the project's runs when given; every key)."""
    wanted = {c.name.split(":", 1)[-1] for c in names(tree) if c.name.lower() not in FIELDS}
    every = _all_keys(store, table) if wanted else []
    keys = [k for k in every if any(k == n or k.endswith(("." + n, "/" + n)) for n in wanted)]
    if project:
        keys = [k for k in keys if store.query(
            f"SELECT 1 FROM {table} t JOIN runs r ON r.id = t.run_id WHERE t.key = ? AND r.project = ? LIMIT 1",
            (k, project))]
    return keys, every


def select(store: Store, text: str, *, project: str | None = None, archived: bool = False) -> list[int]:
    """The ids of the runs of their own (newest first) the expression matches. Archived runs are
    left out unless `archived` or the expression names `archived`. One query for the runs (the
    columns it names only), one per param and metric it names (by the (key, value) index), one
    for tags if it names them."""
    tree = parse(text)
    params, every_param = _relevant(store, "params", tree, project)
    metrics, every_metric = _relevant(store, "run_metrics", tree, project)
    flt = compile_filter(text, params, metrics, suggest=[*every_param, *every_metric])
    scope, args = "eval_of IS NULL", []
    if project:
        scope += " AND project = ?"
        args.append(project)
    if not (archived or flt.archived):
        scope += " AND archived_at IS NULL"
    cols = ", ".join(dict.fromkeys(["id", *flt.fields]))
    rows = store.query(f"SELECT {cols} FROM runs WHERE {scope} ORDER BY id DESC", args)
    return flt.matching(rows, *columns(store, flt))


def columns(store: Store, flt: Filter) -> tuple[dict[str, dict[int, Any]], dict[str, dict[int, Any]],
                                                 dict[int, list[str]]]:
    """What a filter reads besides the runs table: param key -> run -> value (decoded), metric
    key -> run -> final value, run -> tags."""
    params: dict[str, dict[int, Any]] = {}
    with store._lock:
        for key in flt.params:
            decoded: dict[str, Any] = {}  # a sweep repeats few distinct values: decode each once
            col = params[key] = {}
            for rid, v in store.conn.execute("SELECT run_id, value FROM params WHERE key = ?", (key,)):
                if v not in decoded:
                    decoded[v] = json.loads(v) if v is not None else None
                col[rid] = decoded[v]
        metrics = {key: dict(store.conn.execute("SELECT run_id, value FROM run_metrics WHERE key = ?", (key,)))
                   for key in flt.metrics}
    return params, metrics, store.tags_of() if flt.tags else {}
