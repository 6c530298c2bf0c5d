"""Least privilege for stage containers: who a stage runs as, what it may do, how secrets reach it.

Design (issue #12, part 6):
- A stage runs as the invoking user's uid:gid, so what it writes under `.fb/runs` belongs to that
  user. The invoking user is SUDO_UID:SUDO_GID under sudo, else the process's own uid:gid. When
  that is root (CI, a root shell), the lab's owner stands in if the lab folder is not root's; when
  even that is root, stages run as nobody (65534:65534) and the supervisor chowns each stage's out
  folder to it: no stage ever gets root by accident. On a rootless engine root inside the container
  is the engine's owner outside, so stages run as 0:0 there.
- `user: root` in a stage asks for root; the uid:gid each stage ran as is recorded (show lists it).
- Every capability is dropped (a stage's `capabilities:` adds back named ones, root stages only:
  Docker gives a non-root process none of them), no-new-privileges is set (setuid binaries and
  file capabilities give nothing), a pids limit caps fork bombs, and `read_only_root: true` makes
  the image's filesystem read-only (/tmp is a tmpfs).
- Secrets (a stage's `env:` names) are files at /run/secrets/NAME by default: on this machine a
  private folder on a tmpfs (/dev/shm), mode 0500/0400, owned by the stage's uid, bind-mounted
  read-only and removed when the stage ends (or by the next supervisor after a crash). `secrets_as:
  env` passes them as environment variables instead, which `docker inspect` shows.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import docker

    from fbtui.config.models import StageSpec

NOBODY = (65534, 65534)
DEFAULT_PIDS = 4096  # threads count too: data loaders and BLAS pools stay far below it
SECRETS_ROOT = Path("/dev/shm")  # a tmpfs: secrets never touch a disk
SECRETS_PREFIX = "fb-secrets-"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    why: str  # where it came from, for messages

    @property
    def person(self) -> bool:
        """A real user (not the nobody fallback): folders on the way to its outputs become its own."""
        return self.uid != 0 and self.why != "nobody"


def invoking_user(lab_root: Path) -> Identity:
    """Whose files a stage's outputs should be (see the module's docstring)."""
    uid, gid = os.getuid(), os.getgid()
    if uid == 0 and os.environ.get("SUDO_UID", "").isdigit() and os.environ["SUDO_UID"] != "0":
        sudo_gid = os.environ.get("SUDO_GID", "")
        return Identity(int(os.environ["SUDO_UID"]), int(sudo_gid) if sudo_gid.isdigit() else int(
            os.environ["SUDO_UID"]), "sudo")
    if uid != 0:
        return Identity(uid, gid, "user")
    try:
        st = lab_root.stat()
    except OSError:
        st = None
    if st is not None and st.st_uid != 0:
        return Identity(st.st_uid, st.st_gid, "lab owner")
    return Identity(*NOBODY, "nobody")


def engine_is_rootless(client: docker.DockerClient) -> bool:
    return any("rootless" in str(o) for o in client.info().get("SecurityOptions") or [])


def stage_user(stage: StageSpec, invoker: Identity, rootless: bool) -> tuple[int, int]:
    if stage.user == "root" or rootless:
        return 0, 0
    return invoker.uid, invoker.gid


def user_label(run_as: tuple[int, int] | None) -> str | None:
    return None if run_as is None else f"{run_as[0]}:{run_as[1]}"


def security_kwargs(stage: StageSpec, run_as: tuple[int, int]) -> dict[str, Any]:
    """containers.create arguments that take privileges away."""
    kwargs: dict[str, Any] = {
        "user": f"{run_as[0]}:{run_as[1]}", "cap_drop": ["ALL"], "security_opt": ["no-new-privileges"],
        "pids_limit": stage.pids_limit or DEFAULT_PIDS,
    }
    if stage.capabilities:
        kwargs["cap_add"] = list(stage.capabilities)
    if stage.read_only_root:
        kwargs["read_only"] = True
        kwargs["tmpfs"] = {"/tmp": "rw,nosuid,nodev,mode=1777"}
    return kwargs


def user_env(run_as: tuple[int, int]) -> dict[str, str]:
    """An arbitrary uid has no passwd entry and no home: HOME on /tmp keeps the caches of torch,
    matplotlib and pip writable; USER keeps getpass.getuser() from failing."""
    if run_as[0] == 0:
        return {}
    return {"HOME": "/tmp", "USER": "fb", "LOGNAME": "fb"}


def prepare_out(out: Path, run_as: tuple[int, int], invoker: Identity, stop_at: Path) -> None:
    """Create a local out folder the stage's user can write. As root, the out folder is chowned to
    it, and for a real user so are the folders above it up to `stop_at` that root made (the user can
    then delete `.fb/runs/N`)."""
    out.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    if run_as[0] != 0:
        os.chown(out, *run_as, follow_symlinks=False)
    if not invoker.person or run_as[0] == 0:
        return
    for folder in [*out.parents]:
        if folder == stop_at or stop_at not in folder.parents:
            break
        with contextlib.suppress(OSError):
            if folder.lstat().st_uid == 0 and not folder.is_symlink():
                os.chown(folder, invoker.uid, invoker.gid, follow_symlinks=False)


def strip_setid(root: Path) -> int:
    """Clear setuid/setgid bits a stage left on regular files in its out folder (a root stage can
    plant a setuid-root binary); links are never followed. Returns how many files changed."""
    changed = 0
    for folder, _, files in os.walk(root, followlinks=False):
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or not st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                if stat.S_ISREG(st.st_mode):
                    os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
                    changed += 1
            finally:
                os.close(fd)
    return changed


# ---------------------------------------------------------------- secrets as files


def write_secrets(name: str, values: dict[str, str], run_as: tuple[int, int]) -> Path:
    """A private folder on a tmpfs holding one file per secret, for a read-only bind mount at
    /run/secrets. Its name is unpredictable (mkdtemp): nobody can plant it beforehand."""
    from fbtui.pipeline.containers import StageSetupError

    if not SECRETS_ROOT.is_dir():
        raise StageSetupError(f"secrets go on a tmpfs at {SECRETS_ROOT}, which this machine lacks",
                              hint="set secrets_as: env in the stage (docker inspect then shows them)")
    folder = Path(tempfile.mkdtemp(prefix=f"{SECRETS_PREFIX}{name}-", dir=SECRETS_ROOT))
    try:
        for key, value in values.items():
            fd = os.open(folder / key, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
            with os.fdopen(fd, "w") as f:
                f.write(value)
            if os.geteuid() == 0:
                os.chown(folder / key, *run_as)
        if os.geteuid() == 0:
            os.chown(folder, *run_as)
        folder.chmod(0o500)
    except BaseException:
        remove_folder(folder)
        raise
    return folder


def remove_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        if folder.is_symlink() or not folder.is_dir():
            return
        folder.chmod(0o700)
        shutil.rmtree(folder, ignore_errors=True)


def remove_secrets(name: str) -> None:
    """Every secrets folder of one stage container (its name is the container's)."""
    head = SECRETS_PREFIX + name + "-"
    for path in glob.glob(str(SECRETS_ROOT / f"{glob.escape(head)}*")):
        if "-" not in Path(path).name[len(head):]:  # not a stage whose name continues with "-..."
            remove_folder(Path(path))


def sweep_secrets(prefix: str, keep: set[str]) -> int:
    """Remove the secrets folders of this checkout's stages (container names starting with
    `prefix`) except those of stages still running (`keep`: container names). A supervisor that
    died mid-stage leaves them; the next one clears them."""
    removed = 0
    for path in glob.glob(str(SECRETS_ROOT / f"{glob.escape(SECRETS_PREFIX + prefix)}*")):
        name = Path(path).name[len(SECRETS_PREFIX):].rsplit("-", 1)[0]
        if name not in keep:
            remove_folder(Path(path))
            removed += 1
    return removed


def secrets_tar(values: dict[str, str], run_as: tuple[int, int]) -> bytes:
    """run/secrets/NAME entries for put_archive into a remote container before it starts."""
    import io
    import tarfile
    import time

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entries: list[tuple[str, bytes | None, int]] = [("run/secrets", None, 0o500)]
        entries += [(f"run/secrets/{k}", v.encode(), 0o400) for k, v in values.items()]
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.uid, info.gid, info.mode, info.mtime = run_as[0], run_as[1], mode, int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def owned_dir_tar(name: str, run_as: tuple[int, int]) -> bytes:
    """One folder entry: put_archive of it onto a fresh volume's mount point makes the volume the
    stage user's (a new volume is root's, and a non-root stage could not write its outputs)."""
    import io
    import tarfile
    import time

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        info.uid, info.gid = run_as
        tar.addfile(info)
    return buf.getvalue()
