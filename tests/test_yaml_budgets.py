"""Hostile YAML: every loader problem is one `file:line: what is wrong`, within budgets of time and
memory, never a traceback and never a hang."""

from __future__ import annotations

import resource
import time

import pytest

from fbtui.config.yamlsrc import parse_text
from fbtui.errors import ConfigError

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))


@pytest.mark.parametrize(("text", "line", "message"), [
    (BOMB, None, "values once aliases are expanded (an alias bomb?)"),
    ("a: 1\nb: &b\n  c: *b\n", 2, "a recursive alias"),
    ("x: " + "[" * 3000 + "]" * 3000 + "\n", None, "nested"),
    ("a: " + "{b: " * 80 + "1" + "}" * 80 + "\n", 1, "nested deeper than 64 levels"),
    ("a: 1\nb: x\x00y\n", 2, "is not allowed in a YAML file"),
    ("a: 1\nn: " + "9" * 5000 + "\n", 2, "invalid value"),
    ("a: " + "x" * 70_000 + "\n", 1, "a value of 70,000 characters"),
])
def test_hostile_yaml_is_one_line_fast_and_small(text: str, line: int | None, message: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()  # CPU time, not wall-clock: a loaded machine does not inflate it
    with pytest.raises(ConfigError) as err:
        parse_text(text, "projects/x/project.yaml")
    assert time.process_time() - cpu0 < 5  # an unbudgeted bomb takes minutes of CPU
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grew_mb < 100
    e = err.value
    assert message in e.message and e.file == "projects/x/project.yaml", e.message
    if line is not None:
        assert e.line == line, e.message
    assert "\n" not in str(e).split("hint:")[0].strip()


def test_a_large_file_is_refused_before_parsing() -> None:
    with pytest.raises(ConfigError, match="too large for a config file"):
        parse_text("a: 1\n" * 1_000_000, "lab.yaml")


def test_a_merge_key_of_itself_ends() -> None:
    assert parse_text("a: &a\n  <<: *a\n", "p.yaml").data == {"a": {}}


def test_ordinary_aliases_still_work() -> None:
    src = parse_text("base: &b {lr: 0.1}\nx: *b\ny:\n  <<: *b\n  depth: 2\n", "p.yaml")
    assert src.data == {"base": {"lr": 0.1}, "x": {"lr": 0.1}, "y": {"lr": 0.1, "depth": 2}}
