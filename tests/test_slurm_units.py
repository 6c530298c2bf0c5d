"""The Slurm backend's parts that need no cluster: lab.yaml's slurm hosts, the job script for each
runtime (checked by bash itself), `scontrol show job` parsing, and commands over ssh. The backend
against a real cluster is tests/test_slurm.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from fbtui.backends.slurm import SlurmBackend, down, parse_job
from fbtui.backends.slurm_job import NodeJob, read_outcome, script
from fbtui.config.models import LabConfig
from fbtui.config.slurm_settings import SlurmSettings


def lab(hosts: dict) -> LabConfig:  # type: ignore[type-arg]
    return LabConfig.model_validate({"hosts": hosts})


def test_a_slurm_host_needs_its_settings_and_an_absolute_shared_path() -> None:
    ok = lab({"c": {"kind": "slurm", "slurm": {"shared": "/mnt/lab/", "runtime": "apptainer"}}})
    assert ok.hosts["c"].slurm is not None and ok.hosts["c"].slurm.shared == "/mnt/lab"
    bad = [({"c": {"kind": "slurm"}}, "needs slurm: {shared"),
           ({"c": {"kind": "slurm", "slurm": {"shared": "rel/path"}}}, "absolute path"),
           ({"c": {"slurm": {"shared": "/x"}}}, "need kind: slurm"),
           ({"c": {"kind": "slurm", "slurm": {"shared": "/x", "runtime": "lxc"}}}, "docker"),
           ({"c": {"kind": "slurm", "slurm": {"shared": "/x", "login": "login-node"}}}, "ssh://user@host"),
           ({"c": {"kind": "slurm", "slurm": {"shared": "/x", "engine": "c"}}}, "slurm.engine must name a Docker")]
    for hosts, text in bad:
        with pytest.raises(ValidationError) as e:
            lab(hosts)
        assert text in str(e.value), (hosts, str(e.value))


def job(tmp_path: Path, **kw: object) -> NodeJob:
    base: dict[str, object] = dict(run_id=3, project="p", stage="train", name="fb-lab-0000-r3-train",
                                   folder=tmp_path / "it's here", image="fb/proj-p:abc",
                                   command=["python3", "-c", "print('a b $HOME')"], env={"A": "x y", "B": "$(no)"},
                                   secrets=["TOKEN"], inputs={"prepare": str(tmp_path / "p out")}, cpus=1.5,
                                   memory=2**30, gpus=2, processes=2, labels={"fb.run": "3"},
                                   node_env={"DOCKER_HOST": "unix:///x.sock"})
    base.update(kw)
    return NodeJob(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("runtime", ["docker", "podman", "apptainer"])
@pytest.mark.parametrize("secrets_as", ["files", "env"])
def test_the_job_script_is_valid_bash_for_every_runtime(tmp_path: Path, runtime: str, secrets_as: str) -> None:
    text = script(job(tmp_path, runtime=runtime, secrets_as=secrets_as))
    path = tmp_path / "job.sh"
    path.write_text(text)
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "'x y'" in text or "A=x y" in text  # values quoted, never split
    assert "$(no)" not in text.replace("'B=$(no)'", "")  # never expanded by the node's shell
    assert "TOKEN" in text and "hunter" not in text  # secrets by name only


def test_the_docker_script_carries_the_container_contract(tmp_path: Path) -> None:
    text = script(job(tmp_path))
    for part in ("--init", "--network none", "--cap-drop ALL", "--security-opt no-new-privileges",
                 "--pids-limit 4096", "--memory 1073741824 --memory-swap 1073741824", "--cpus 1.5",
                 "--hostname localhost", ":/fb/in/prepare:ro", "/fb/config.yaml:ro", "--label fb.run=3",
                 'device=${SLURM_JOB_GPUS', "trap stop TERM INT", "outcome \"$code\" \"$oom\""):
        assert part in text, part


def test_scontrol_lines_become_states() -> None:
    pending = parse_job("JobId=7 JobName=fb-x JobState=PENDING Reason=Resources Dependency=(null) ExitCode=0:0")
    assert (pending.phase, pending.reason) == ("pending", "Resources")
    fresh = parse_job("JobId=7 JobState=PENDING Reason=None ExitCode=0:0")
    assert (fresh.phase, fresh.reason) == ("pending", "")
    running = parse_job("JobId=7 JobState=RUNNING Reason=None BatchHost=node3 NodeList=node3 ExitCode=0:0")
    assert (running.phase, running.node) == ("running", "node3")
    oom = parse_job("JobId=7 JobState=OUT_OF_MEMORY Reason=OutOfMemory ExitCode=0:125 BatchHost=n1")
    assert oom.phase == "done" and "OUT_OF_MEMORY" in oom.reason and oom.signal == 125
    failed = parse_job("JobId=7 JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0")
    assert (failed.phase, failed.exit_code, failed.signal) == ("done", 3, None)
    assert "NODE_FAIL" in parse_job("JobId=7 JobState=NODE_FAIL Reason=NodeDown ExitCode=0:0").reason


def test_commands_run_on_an_ssh_login_node_with_its_slurm_conf() -> None:
    b = SlurmBackend("c", SlurmSettings(shared="/x", login="ssh://me@login:2222", conf="/etc/s.conf"),
                     ["-i", "/k"])
    cmd = b.command(["squeue", "-h", "-n", "fb-a b"])
    assert cmd[:5] == ["ssh", "-o", "BatchMode=yes", "-p", "2222"] and "me@login" in cmd
    assert cmd[-1] == "env SLURM_CONF=/etc/s.conf squeue -h -n 'fb-a b'"
    assert SlurmBackend("c", SlurmSettings(shared="/x")).command(["sinfo"]) == ["sinfo"]


def test_a_controller_that_does_not_answer_is_unreachable_not_refused() -> None:
    assert down("slurm_load_jobs error: Unable to contact slurm controller (connect failure)")
    assert not down("slurm_load_jobs error: Invalid job id specified")


def test_an_outcome_file_is_read_only_when_whole(tmp_path: Path) -> None:
    assert read_outcome(tmp_path) is None
    (tmp_path / "outcome.json").write_text('{"exit": 3, "oom": false}\n')
    assert read_outcome(tmp_path) == {"exit": 3, "oom": False}
    (tmp_path / "outcome.json").write_text('{"exit": ')
    assert read_outcome(tmp_path) is None


def test_a_secret_missing_from_the_jobs_environment_is_named_before_anything_starts(tmp_path: Path) -> None:
    import os

    folder = tmp_path / "job"
    folder.mkdir()
    text = script(job(tmp_path, folder=folder, secrets=["FB_UNSET_SECRET_X"]))
    env = {k: v for k, v in os.environ.items() if k != "FB_UNSET_SECRET_X"}
    proc = subprocess.run(["bash", "-c", text], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 125
    assert "secret FB_UNSET_SECRET_X did not reach the job" in (folder / "setup.err").read_text()
    assert read_outcome(folder) == {"exit": 125, "oom": False}
