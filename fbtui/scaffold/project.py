"""`fbtui new`: the files of a new project, written into projects/NAME/ of a lab.

project.yaml is written as text (not dumped) so that it keeps the comments a person needs to finish
it: what each option was, what the scaffold could not express (`# TODO`), where metrics come from.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fbtui.errors import UsageError
from fbtui.output import yaml_scalar
from fbtui.scaffold.options_plan import Entry, OptionsPlan, command_words, plan_options

SECTION = "train"
EXAMPLE_PATTERN = r"step (?P<step>\d+) .*loss (?P<loss>[-+0-9.eE]+)"
RESERVED = ("project.yaml", "requirements.txt")


@dataclass
class Scaffold:
    folder: Path
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the person must know or finish (TODOs among them)


def check_target(lab_root: Path, name: str, script: Path | None = None) -> Path:
    """projects/NAME, which must not exist, unless it holds `script` and no project.yaml yet (code
    copied there first is adopted where it is)."""
    from fbtui.config.names import name_problem

    problem = name_problem("project", name)
    if problem:
        raise UsageError(problem)
    folder = lab_root / "projects" / name
    if folder.exists() and not (script is not None and _holds(folder, script)):
        raise UsageError(f"projects/{name} already exists: choose another name, or remove the folder first")
    return folder


def _holds(folder: Path, script: Path) -> bool:
    """The folder has the script directly in it and no project.yaml."""
    return not (folder / "project.yaml").exists() and script.resolve().parent == folder.resolve()


def new_native(lab_root: Path, name: str, environment: str, hidden: int) -> Scaffold:
    """A project on common's pipeline and defaults, with an ablation over model.hidden."""
    folder = check_target(lab_root, name)
    wide, narrow = hidden * 2, max(1, hidden // 2)
    text = "\n".join([
        f"description: {yaml_scalar(name + ', made with fbtui new')}",
        f"environment: {environment}",
        "# Inherits common/defaults.yaml and common's pipeline (prepare -> train -> evaluate): set here only",
        f"# what differs. `fbtui config {name}` shows every value and where it comes from.",
        "config:",
        "  model:",
        f"    hidden: {hidden}",
        "",
        "ablations:",
        "  example:",
        "    description: two widths of the hidden layer",
        "    grid:",
        f"      model.hidden: [{narrow}, {wide}]",
        "",
    ])
    folder.mkdir(parents=True)
    out = Scaffold(folder)
    _write(out, folder / "project.yaml", text)
    return out


def new_from_script(lab_root: Path, name: str, environment: str, script: Path,
                    environment_pip: list[str]) -> Scaffold:
    """A project that runs `script` as it is: its options as a config section, its flags from a template."""
    from fbtui.scaffold.argparse_reader import parse_script, read_parser
    from fbtui.scaffold.requirements import bare_writer_line, base_dists, read_imports, requirements
    from fbtui.scaffold.stdout_patterns import stdout_patterns

    folder = check_target(lab_root, name, script)
    if not script.is_file():
        raise UsageError(f"no such script: {script}" if not script.exists() else f"not a file: {script}")
    if script.name in RESERVED:
        raise UsageError(f"the script may not be called {script.name} (the project folder has its own): rename it")
    tree = parse_script(script)  # before anything is written: a bad script leaves no folder behind
    parser = read_parser(tree)
    plan = plan_options(parser.options, SECTION)
    imports = read_imports(tree)
    reqs = requirements(imports, script.parent, base_dists(lab_root, environment_pip))
    patterns = stdout_patterns(tree)

    writer_line = bare_writer_line(tree)
    if writer_line:
        plan.todos.append(f"SummaryWriter() on line {writer_line} writes to ./runs (/fb/runs), outside /fb/out "
                          "where fbtui looks for event files: give it a log_dir under /fb/out")
    notes: list[str] = []
    if not parser.has_parser:
        notes.append(f"no argparse.ArgumentParser in {script.name}: the {SECTION} section is empty; "
                     "add keys and use them in the command as {" + SECTION + ".KEY}")
    if parser.subcommands:
        notes.append(f"{script.name} has subcommands: their options are all in the section; put the "
                     "subcommand in the command and keep only its options")
    notes += [f"TODO: {t}" for t in plan.todos]
    if not folder.exists():
        notes += [f"{script.name} imports {m} from its own folder: copy {m} into projects/{name}/ too"
                  for m in reqs.local]
    notes += reqs.notes
    if not patterns:
        notes.append(f"no metric line found in {script.name}: project.yaml has a commented stdout pattern to adapt")

    text = _project_yaml(script.name, environment, plan, patterns, imports.summary_writer, parser.has_parser)
    out = Scaffold(folder, notes=notes)
    if not folder.exists():
        folder.mkdir(parents=True)
        try:
            shutil.copy2(script, folder / script.name)
        except OSError as e:
            shutil.rmtree(folder, ignore_errors=True)
            raise UsageError(f"cannot copy {script}: {e.strerror or e}") from None
        out.written.append(folder / script.name)
    _write(out, folder / "project.yaml", text)
    if reqs.lines and (folder / "requirements.txt").exists():  # an adopted folder's own: kept as it is
        out.notes.append(f"projects/{name}/requirements.txt is kept as it was; the script also imports: "
                         + ", ".join(reqs.needed or reqs.lines))
    elif reqs.lines:
        _write(out, folder / "requirements.txt", "\n".join(reqs.lines) + "\n")
    return out


def _write(out: Scaffold, path: Path, text: str) -> None:
    path.write_text(text)
    out.written.append(path)


def _project_yaml(script: str, environment: str, plan: OptionsPlan, patterns: list[str], tensorboard: bool,
                  has_parser: bool) -> str:
    lines = [
        f"description: {yaml_scalar(script + ', brought in with fbtui new --from-script')}",
        f"environment: {environment}",
        "inherit: false            # take nothing from common/defaults.yaml: the records hold only this project's keys",
        "config:",
    ]
    if plan.seed is not None:
        lines.append(f"{'  seed: ' + str(plan.seed):<28} # the script's {plan.seed_flag}")
    where = "the script's options" if has_parser else "no ArgumentParser found: add keys here"
    lines += _section(SECTION, plan.entries, f"{where}: {{flags:{SECTION}}} passes them as --flags")
    if plan.explicit:
        lines += _section(plan.explicit_section, plan.explicit, "spelled unlike the rest: each written out in the "
                                                                 "command")
    lines += ["pipeline:", f"  - name: {SECTION}"]
    lines += [f"    # TODO: {t}" for t in plan.todos]
    lines += [f"    command: {yaml_scalar(command_words(plan, script))}"]
    lines += _metrics(patterns, tensorboard)
    lines += ["    artifacts: []", ""]
    lines += _ablation(plan)
    return "\n".join(lines) + "\n"


def _section(name: str, entries: list[Entry], comment: str) -> list[str]:
    if not entries:
        return [f"  {name}: {{}}  # {comment}"]
    lines = [f"  {name}:  # {comment}"]
    for e in entries:
        row = f"    {e.key}: {yaml_scalar(e.value)}"
        lines.append(f"{row:<28} # {e.comment}" if e.comment else row)
    return lines


def _quoted(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"  # YAML single quotes: backslashes stay as they are


def _metrics(patterns: list[str], tensorboard: bool) -> list[str]:
    tb = '      tensorboard: ["**/events.out.tfevents.*"]   # event files under /fb/out'
    if patterns:
        lines = ["    metrics:",
                 "      stdout:             # named groups: `step`, and one per metric (the group name is its key)"]
        for p in patterns:
            lines += [f"        - pattern: {_quoted(p)}", f"          prefix: {SECTION}/"]
        return lines + ([tb] if tensorboard else [])
    example = ["stdout:             # no metric line found in the script: adapt this example",
               f"  - pattern: {_quoted(EXAMPLE_PATTERN)}", f"    prefix: {SECTION}/"]
    if tensorboard:
        return ["    metrics:", *(f"      # {e}" for e in example), tb]
    return ["    # metrics:", *(f"    #   {e}" for e in example)]


def _ablation(plan: OptionsPlan) -> list[str]:
    """Two values of the first float option (else int, bool or choice), to show what an ablation is."""
    entries = [(plan.section, e) for e in plan.entries] + [(plan.explicit_section, e) for e in plan.explicit]
    rules: list[tuple[Any, str, Any]] = [
        (lambda v: isinstance(v, float), "two values of the first float option", lambda v: [v, v / 2 if v else 0.1]),
        (lambda v: isinstance(v, int) and not isinstance(v, bool), "two values of the first integer option",
         lambda v: [v, v * 2 if v else 1]),
        (lambda v: isinstance(v, bool), "both values of the first true/false option", lambda v: [v, not v]),
    ]
    pick = next(((f"{s}.{e.key}", description, values(e.value)) for test, description, values in rules
                 for s, e in entries if test(e.value)), None)
    if pick is None:
        return ["# ablations:             # nothing numeric to vary was found; an example:",
                "#   example:", "#     grid:", f"#       {plan.section}.KEY: [1, 2]"]
    key, description, values = pick
    return ["ablations:", "  example:", f"    description: {description}", "    grid:",
            f"      {key}: {yaml_scalar(values)}"]
