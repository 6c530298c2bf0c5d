"""Filter expressions (#14) over a real SQLite store: the grammar, name resolution (full dotted
key or unique suffix), final metrics, tags and archived, and errors as one line with the column."""

from __future__ import annotations

from pathlib import Path

import pytest

from fbtui.records.filters import FilterError, compile_filter, select
from fbtui.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "fb.db")
    yield s
    s.close()


def add(store: Store, *, lr: float, acc: float | None, status: str = "succeeded", opt: str = "adam",
        project: str = "p", tags: tuple[str, ...] = (), note: str | None = None) -> int:
    rid = store.create_run(project, config="x: 1\n", stages=["train"], variant=f"lr={lr}", seed=0,
                           params={"optim.lr": lr, "optim.name": opt, "model.hidden": 64, "sched.warmup": True})
    store.update_run(rid, status=status, note=note)
    if acc is not None:
        store.add_metrics(rid, [("eval/accuracy", 0, acc, 0.0), ("train/loss", 3, 1 - acc, 0.0)], stage="train")
    store.add_tags(rid, list(tags))
    return rid


def ids(store: Store, text: str, **kw: object) -> list[int]:
    return sorted(select(store, text, **kw))  # type: ignore[arg-type]


@pytest.fixture
def runs(store: Store) -> dict[str, int]:
    return {
        "a": add(store, lr=0.001, acc=0.95, tags=("baseline",), note="the reference run"),
        "b": add(store, lr=0.001, acc=0.80, opt="sgd"),
        "c": add(store, lr=0.1, acc=0.92, tags=("baseline", "paper")),
        "d": add(store, lr=0.1, acc=None, status="failed", note="Diverged at epoch 3"),
        "e": add(store, lr=0.05, acc=0.99, project="q"),
    }


def test_the_issue_example_and_boolean_grammar(store: Store, runs: dict[str, int]) -> None:
    a, b, c, d, e = (runs[k] for k in "abcde")
    assert ids(store, "lr<0.01 and eval/accuracy>0.9") == [a]
    assert ids(store, "status=failed") == [d]
    assert ids(store, "status != failed") == sorted([a, b, c, e])
    assert ids(store, "tag=baseline") == sorted([a, c])
    assert ids(store, "tag=baseline and not tag=paper") == [a]
    assert ids(store, "tag!=baseline") == sorted([b, d, e])
    assert ids(store, "status=failed or (lr>=0.1 and eval/accuracy>=0.92)") == sorted([c, d])
    assert ids(store, "NOT (lr <= 0.05) AND status = succeeded") == [c]  # keywords in any case, spaces anywhere
    assert ids(store, "optim.name='sgd'") == [b] == ids(store, 'name="sgd"') == ids(store, "name=sgd")
    assert ids(store, "lr=1e-3") == sorted([a, b])  # numbers as numbers, whatever their spelling
    assert ids(store, "warmup=true") == sorted(runs.values())  # yes/no params as true/false
    assert ids(store, "note~diverged") == [d]  # ~: contains, any case
    assert ids(store, "project=q") == [e] and ids(store, "tag=baseline", project="q") == []
    assert ids(store, "loss<0.07") == sorted([a, e])  # a metric by a unique suffix too
    assert ids(store, "!(status=failed)") == sorted([a, b, c, e])


def test_a_run_without_the_key_matches_no_comparison(store: Store, runs: dict[str, int]) -> None:
    d = runs["d"]  # failed before it had metrics
    assert d not in ids(store, "eval/accuracy<2") and d not in ids(store, "eval/accuracy!=0.5")
    assert d in ids(store, "not eval/accuracy>0")  # `not` takes the runs without it too


def test_archived_runs_are_hidden_unless_asked_or_named(store: Store, runs: dict[str, int]) -> None:
    a, c = runs["a"], runs["c"]
    store.set_archived([a])
    assert ids(store, "tag=baseline") == [c]
    assert ids(store, "tag=baseline", archived=True) == sorted([a, c])
    assert ids(store, "archived") == [a]  # naming archived looks among them
    assert ids(store, "tag=baseline and not archived") == [c]
    assert ids(store, "archived=false and tag=baseline") == [c]


def test_a_suffix_matching_two_keys_names_both(store: Store) -> None:
    add(store, lr=0.1, acc=0.5)
    rid = store.create_run("p", config="x: 1\n", stages=["train"], params={"sched.lr": 0.5})
    assert rid
    with pytest.raises(FilterError) as e:
        select(store, "lr<0.2")
    assert "'lr' is ambiguous: optim.lr, sched.lr (write the full key)" in e.value.message
    assert select(store, "sched.lr>0.2") == [rid]


@pytest.mark.parametrize(("text", "says"), [
    ("lr<", "expected a value after '<' at column 4 (at the end)"),
    ("lr<0.01 and", "expected a name such as status, tag or a param or metric key, not the end at column 12"),
    ("(status=failed", "the '(' at column 1 is not closed: expected ')' at column 15"),
    ("status=failed)", "a ')' without its '(' at column 14 (here: ')')"),
    ("status=failed tag=x", "expected 'and' or 'or' before 'tag' at column 15"),
    ("note='abc", "the string opened with ' is not closed at column 6"),
    ("   ", "it is empty"),
    ("status=faild", "status is one of pending, queued, running, succeeded, failed, cancelled, not 'faild'"),
    ("status<failed", "status compares with =, != or ~ (contains)"),
    ("eval/accuracy>high", "eval/accuracy is a number: compare it with a number at column 15"),
    ("hiden=64", "no field, param or metric 'hiden' in these runs (did you mean model.hidden?) at column 1"),
    ("tag<a", "tags compare with =, != or ~ (contains)"),
    ("archived=maybe", "archived is yes or no"),
    ("lr", "'lr' needs a comparison, e.g. lr=VALUE"),
])
def test_errors_are_one_line_with_the_column(store: Store, text: str, says: str) -> None:
    add(store, lr=0.1, acc=0.5)
    with pytest.raises(FilterError) as e:
        select(store, text)
    assert says in e.value.message and "\n" not in e.value.message, e.value.message
    assert e.value.exit_code == 2  # a usage error


def test_compiled_once_evaluated_per_row() -> None:
    f = compile_filter("lr<0.01 and eval/accuracy>0.9", ["optim.lr"], ["eval/accuracy"])
    assert f.params == ["optim.lr"] and f.metrics == ["eval/accuracy"] and not f.tags and not f.archived
    row = {"id": 1, "params": {"optim.lr": 0.001}, "metrics": {"eval/accuracy": 0.95}, "tags": set()}
    assert f(row) and not f({**row, "metrics": {"eval/accuracy": 0.5}})
    both = compile_filter("metric:x>1 or param:x=a", ["x"], ["x"])  # a key that is both: said which
    assert both({"params": {"x": "a"}, "metrics": {}}) and both({"params": {}, "metrics": {"x": 2.0}})
    with pytest.raises(FilterError, match="both a param and a metric"):
        compile_filter("x=1", ["x"], ["x"])
