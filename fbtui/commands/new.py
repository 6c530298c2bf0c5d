"""Scaffold commands: new."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fbtui.commands.common import Command, lab_of

DESCRIPTION = """\
Make projects/NAME/ in the lab: a project.yaml with a stage and an ablation.

With --from-script, an argparse training script you already have becomes
the project as it is: it is copied into the folder, its add_argument calls
are read from the source (the script is never run or imported) and become
a config section with their defaults, passed back as flags by the command
`python3 /fb/project/SCRIPT {flags:train} --seed {seed}`. Log lines such as
print(f"step {step} | loss {loss:.4f}") become metric patterns, SummaryWriter
event files a tensorboard source, and imports the base image lacks go into
requirements.txt. What cannot be expressed is marked # TODO in project.yaml.

Without --from-script: a project on common's pipeline and defaults.
"""

EPILOG = """\
examples:
  fbtui new charlm --from-script ~/code/charlm/train.py
  fbtui config charlm              check the section and the command
  fbtui run charlm --ablation example
  fbtui new wide-mlp               a native project: common's pipeline

exit codes: 0 written, 2 refused (bad name, existing project, bad script)
"""


def add_parsers(sub: Any, cmd: Command) -> None:
    new = cmd("new", "make a new project, from scratch or from an argparse training script", DESCRIPTION)
    new.epilog = EPILOG
    new.add_argument("name", metavar="NAME", help="the project's name (a folder under projects/)")
    new.add_argument("--from-script", metavar="PATH", type=Path,
                     help="an argparse training script to bring in (read, never run)")
    new.add_argument("--environment", metavar="ENV",
                     help="the environment to run in (default: lab.yaml's)")


def cmd_new(args: argparse.Namespace) -> int:
    from fbtui.errors import FBError, UsageError
    from fbtui.scaffold.project import new_from_script, new_native

    lab = lab_of(args)
    environment = args.environment or lab.config.defaults.environment
    known = lab.environment_names()
    if known and environment not in known:
        raise UsageError(f"unknown environment '{environment}' (environments: {', '.join(known)})")
    if args.from_script is not None:
        pip: list[str] = []
        if environment in known:
            try:
                pip = list(lab.load_environment(environment).pip)
            except FBError:  # an invalid environment.yaml: `fbtui config` will name it; the fixed list stands
                pip = []
        made = new_from_script(lab.root, args.name, environment, args.from_script.expanduser(), pip)
    else:
        made = new_native(lab.root, args.name, environment, _hidden(lab))
    for path in made.written:
        print(f"wrote {lab.rel(path)}")
    for note in made.notes:
        print(note)
    print("next:")
    print(f"  fbtui config {args.name}      the resolved config and the stage's command")
    print(f"  fbtui run {args.name}         build the image and run it")
    return 0


def _hidden(lab: Any) -> int:
    """common/defaults.yaml's model.hidden, the native example's starting width."""
    from fbtui.errors import FBError

    try:
        model = lab.defaults.data.get("model")
    except FBError:  # a broken defaults file is `fbtui config`'s to report
        return 128
    value = model.get("hidden", 128) if isinstance(model, dict) else 128
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 128
