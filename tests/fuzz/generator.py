"""A seeded generator of malformed input: project.yaml, lab.yaml, environment.yaml, `-o` values
and CLI arguments. Each case is (name, files to write into a copy of the example lab, argv).

The same seed gives the same cases, so a failure names a case that can be replayed:
`python -m tests.fuzz.worker --seed S --only NAME`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tests.labs import REPO

PROJECT = "projects/digits-mlp/project.yaml"
LAB = "lab.yaml"
ENV = "environments/torch-cpu/environment.yaml"
# Commands that load what a case breaks and must never write the store (runs get --host nope, so
# they are refused after every check of the files, before anything is built).
READERS = (["config", "digits-mlp"], ["variants", "digits-mlp"], ["ls"], ["compare", "digits-mlp"],
           ["run", "digits-mlp", "-d", "--host", "nope"], ["build", "digits-mlp", "--host", "nope"])

HOSTILE_VALUES = [
    ".nan", "-.inf", ".inf", "1e400", "-1", "0", "-5", "99999999999999999999999999", "1" * 5000, "2024-01-02",
    "2024-01-02T03:04:05Z", "null", "~", "''", '""', "[]", "{}", "[[[[[[[[]]]]]]]]", "{a: {b: {c: {}}}}", "yes",
    "0x10", "0o17", "1_000", "+.5", "!!binary aGVsbG8=", "!!python/object:os.system ls", "!!set {a, b}",
    "*undefined_alias", "&a [*a]", "'\\0'", '"\\x00"', '"\\ud800"', '"' + "x" * 70_000 + '"', "é", "🙂", "\t",
    "|\n  block\n  text", ">-\n  folded", "- a\n- b", "a: b: c", "[1, 2", "{a: 1", "'unterminated", "@at", "`tick`",
    "%percent", "../../etc/passwd", "/etc/shadow", "$(id)", "; rm -rf /", "a\nb", "MyName", "my name",
    "<<: *x", "? complex\n: key",
]
HOSTILE_KEYS = ["", "a.b", "model..hidden", "..", "__class__", "Model", "1", "-", "<<", "? x", "é", "a b", "x" * 300]


def _bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


STRUCTURAL = [
    _bomb(9),
    "a: &a [*a]\n",
    "x: " + "[" * 3000 + "]" * 3000 + "\n",
    "x: " + "{a: " * 200 + "1" + "}" * 200 + "\n",
    "description: x\0y\n",
    "\ufeffdescription: bom\n",
    "description: \x85\x1b[31mred\n",
    "- a\n- b\n",
    "just a string\n",
    "42\n",
    "",
    "---\n---\n",
    "description: a\ndescription: b\n",
    "\t description: tab\n",
    "{" * 50 + "\n",
    "x: !!python/name:os.system\n",
]


@dataclass
class Case:
    name: str
    files: dict[str, bytes] = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)


def _text(rel: str) -> str:
    return (REPO / rel).read_text()


def _mutate_text(rng: random.Random, text: str) -> str:
    """One random edit of a YAML text: a value, a key, a line, or raw bytes."""
    lines = text.splitlines()
    kind = rng.randrange(7)
    i = rng.randrange(len(lines)) if lines else 0
    if kind == 0 and lines:  # replace a value
        line = lines[i]
        if ":" in line:
            head = line.split(":", 1)[0]
            lines[i] = f"{head}: {rng.choice(HOSTILE_VALUES)}"
    elif kind == 1 and lines:  # replace a key
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if ":" in line:
            lines[i] = " " * indent + rng.choice(HOSTILE_KEYS) + ":" + line.split(":", 1)[1]
    elif kind == 2 and lines:  # duplicate or delete a line
        if rng.random() < 0.5:
            lines.insert(i, lines[i])
        else:
            del lines[i]
    elif kind == 3 and lines:  # shift indentation
        lines[i] = (" " * rng.choice([1, 3, 8])) + lines[i] if rng.random() < 0.5 else lines[i].lstrip()
    elif kind == 4:  # a whole structural horror
        return rng.choice(STRUCTURAL)
    elif kind == 5 and text:  # cut the file somewhere
        return text[: rng.randrange(len(text))]
    else:  # a hostile value under a known section
        lines.append(rng.choice(["config:", "ablations:", "pipeline:", "hosts:", "build:", "pip:", "apt:"])
                     + " " + rng.choice(HOSTILE_VALUES).replace("\n", " "))
    return "\n".join(lines) + "\n"


def _project_cases(rng: random.Random, n: int) -> list[Case]:
    base = _text(PROJECT)
    targeted = [
        "config:\n  model: {hidden: .nan}\n", "config:\n  seed: 18446744073709551617\n",
        "config:\n  when: 2024-01-02\n", "config:\n  1: x\n", "ablations:\n  BadName:\n    grid: {model.hidden: [1]}\n",
        "ablations:\n  a:\n    grid: {model.hidden: [" + ", ".join(map(str, range(1, 200))) + "], optim.lr: ["
        + ", ".join(f"{i}e-4" for i in range(1, 200)) + "]}\n",
        "ablations:\n  a:\n    variants: {'../x': {model.hidden: 1}}\n",
        "ablations:\n  a:\n    grid: {model.hidden: [1]}\n    seeds: [-1]\n",
        "pipeline:\n  - {name: a, timeout: -5}\n", "pipeline:\n  - {name: a, artifacts: ['']}\n",
        "pipeline:\n  - {name: a, artifacts: ['/etc/passwd']}\n", "pipeline:\n  - {name: a, resources: {memory: -5}}\n",
        "pipeline:\n  - {name: a, resources: {cpus: .nan}}\n", "pipeline:\n  - {name: a, resources: {gpus: -1}}\n",
        "pipeline:\n  - {name: a, env: ['A=B']}\n", "pipeline:\n  - {name: 'A B'}\n", "pipeline: []\n",
        "environment: ../../etc\n", "environment: Torch-CPU\n",
    ]
    cases = [Case(f"project-targeted-{i}", {PROJECT: t.encode()}, ["config", "digits-mlp"])
             for i, t in enumerate(targeted)]
    for i in range(n - len(cases)):
        text = base
        for _ in range(rng.randint(1, 3)):
            text = _mutate_text(rng, text)
        data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.08:  # bytes that are not UTF-8
            at = rng.randrange(len(data) + 1)
            data = data[:at] + bytes([rng.choice([0xFF, 0xC3, 0x80, 0x00])]) + data[at:]
        cases.append(Case(f"project-{i}", {PROJECT: data}, list(rng.choice(READERS))))
    return cases


def _lab_cases(rng: random.Random, n: int) -> list[Case]:
    base = _text(LAB)
    targeted = [
        "store: ''\n", "store: /dev/null\n", "store: /\n", "store: lab.yaml/fb.db\n", "name: My Lab\n",
        "name: ../x\n", "hosts:\n  local: {slots: 0}\n", "hosts:\n  local: {cpus: .nan}\n",
        "hosts:\n  local: {memory: -5}\n", "hosts:\n  b: {url: 'ssh://a b'}\n", "hosts:\n  b: {url: tcp://10.0.0.1:2375}\n",
        "hosts:\n  b: {url: 'ssh://x;id'}\n", "limits: {ablation_runs: -1}\n", "build: {max_untracked_size: -5}\n",
        "defaults: {environment: ../x}\n", "build: {network: bridge}\n",
    ]
    cases = [Case(f"lab-targeted-{i}", {LAB: (base + t).encode()}, ["ls"]) for i, t in enumerate(targeted)]
    for i in range(n - len(cases)):
        text = base
        for _ in range(rng.randint(1, 3)):
            text = _mutate_text(rng, text)
        cases.append(Case(f"lab-{i}", {LAB: text.encode("utf-8", "surrogatepass")}, list(rng.choice(READERS))))
    return cases


def _env_cases(rng: random.Random, n: int) -> list[Case]:
    entries = ["'numpy\\nRUN id'", "\"numpy'; id; '\"", "--index-url=http://evil", "-e .", "'x @ file:///etc'",
               "'a b'", "''", "'numpy==1.*'", "'$(id)'", "'pkg; python_version<\"3\"'", "'git+https://x/y'",
               "'../local'", "1", "null", "{a: b}", "'numpy >= 1.0 ; extra == \"x\"'", "'a' * 3"]
    cases: list[Case] = []
    for i in range(n):
        field_ = rng.choice(["pip", "apt"])
        picked = ", ".join(rng.choice(entries) for _ in range(rng.randint(1, 3)))
        text = f"description: fuzz\n{field_}: [{picked}]\n"
        if rng.random() < 0.3:
            text = _mutate_text(rng, text)
        cases.append(Case(f"env-{i}", {ENV: text.encode("utf-8", "surrogatepass")},
                          rng.choice([["build", "digits-mlp", "--host", "nope"], ["ls"], ["config", "digits-mlp"]])))
    return cases


def _override_cases(rng: random.Random, n: int) -> list[Case]:
    keys = ["model.hidden", "optim.lr", "seed", "train.epochs", "model", "nope.key", "model.hidden.x", "", "data.name",
            "train", "a" * 200]
    cases: list[Case] = []
    for i in range(n):
        value = rng.choice(HOSTILE_VALUES)
        text = rng.choice([f"{rng.choice(keys)}={value}", value, f"={value}", f"{rng.choice(keys)}"])
        verb = rng.choice([["config", "digits-mlp"], ["run", "digits-mlp", "-d", "--host", "nope"]])
        cases.append(Case(f"override-{i}", {}, [*verb, "-o", text]))
    return cases


def _cli_cases(rng: random.Random, n: int) -> list[Case]:
    verbs = ["ls", "config", "variants", "build", "run", "ps", "logs", "cancel", "compare", "eval", "show", "diff",
             "rerun", "images", "hosts"]  # never gc: it would clean the shared engine
    words = ["digits-mlp", "nope", "../x", "/etc", "", "0", "-1", "#3", "99999999999999999999", "abc", "1,2",
             "--json", "--seed", "--stages", "--ablation", "--variant", "--format", "xls", "--output", "/dev/full",
             "--digits", "-3", "--host", "nope", "-o", "=", "--lab", "/nonexistent", "-f", "--all", "--days", "nan",
             "--resume", "--no-cache", "sweep", "é", "\x00", "--help-me", "-d"]
    cases: list[Case] = []
    for i in range(n):
        argv = [rng.choice(verbs)] + [rng.choice(words) for _ in range(rng.randint(0, 5))]
        if argv[0] in ("run", "rerun", "build", "eval") and "--host" not in argv:
            argv += ["--host", "nope"]  # never start real work
        if argv[0] in ("run", "rerun"):
            argv.append("-d")  # never follow
        cases.append(Case(f"cli-{i}", {}, argv))
    return cases


def generate(seed: int = 20261127) -> list[Case]:
    """At least 200 cases: about 70 project.yaml, 45 lab.yaml, 30 environment.yaml, 30 -o, 50 CLI."""
    rng = random.Random(seed)
    return [*_project_cases(rng, 70), *_lab_cases(rng, 45), *_env_cases(rng, 30), *_override_cases(rng, 30),
            *_cli_cases(rng, 50)]
