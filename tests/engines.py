"""A second, private Docker daemon listening on loopback TCP: a remote host for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SecondDaemon:
    def __init__(self, tls: Path | None = None) -> None:
        self.tls = tls  # a folder with ca.pem, server.pem, server-key.pem: serve TCP with --tlsverify
        # Short paths: containerd's sockets live under the exec root and unix paths are limited.
        self.dir = Path(tempfile.mkdtemp(prefix="fbr-", dir="/tmp"))
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.sock = self.dir / "docker.sock"  # for an ssh:// host: sshd forwards to this socket
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        (self.dir / "data").mkdir(exist_ok=True)
        log = (self.dir / "dockerd.log").open("wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.url, "--host", f"unix://{self.sock}", "--data-root", str(self.dir / "data"),
             "--exec-root", str(self.dir / "x"), "--pidfile", str(self.dir / "dockerd.pid"), "--bridge=none",
             "--iptables=false", "--ip-forward=false", "--ip-masq=false", *self._tls_args()],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = subprocess.run(["docker", "-H", f"unix://{self.sock}", "version"], capture_output=True).returncode == 0
            if ok:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        raise RuntimeError(f"second dockerd did not start:\n{(self.dir / 'dockerd.log').read_text()[-3000:]}")

    def _tls_args(self) -> list[str]:
        if self.tls is None:
            return []
        return ["--tlsverify", "--tlscacert", str(self.tls / "ca.pem"), "--tlscert", str(self.tls / "server.pem"),
                "--tlskey", str(self.tls / "server-key.pem")]

    def kill(self) -> None:
        """The host dies: SIGKILL the daemon, keep its data (start() brings it back)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        # A killed daemon leaves its containerd and shims behind: they all run under this folder.
        subprocess.run(["pkill", "-9", "-f", str(self.dir)], capture_output=True)
        subprocess.run(["umount", "-R", str(self.dir / "data")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


class LoopbackSshd:
    """sshd on a loopback port with a throwaway host key and client key: an ssh:// lab host."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fbs-", dir="/tmp"))
        self.port = free_port()
        self.key = self.dir / "id_ed25519"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20) -> None:
        repo = Path(__file__).resolve().parent.parent
        subprocess.run([str(repo / "scripts/engine"), "--sshd"], check=True, capture_output=True)
        for name in ("host_key", "id_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / name)], check=True)
        (self.dir / "authorized_keys").write_text((self.dir / "id_ed25519.pub").read_text())
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.dir / 'host_key'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}", f"PidFile {self.dir / 'sshd.pid'}",
            "StrictModes no", "PermitRootLogin prohibit-password", "PasswordAuthentication no", "UsePAM no",
            "AllowStreamLocalForwarding yes", "AllowTcpForwarding yes", "",
        ]))
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=(self.dir / "sshd.log").open("wb"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"sshd did not start: {(self.dir / 'sshd.log').read_text()[-2000:]}")

    @property
    def options(self) -> list[str]:
        return ["-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR"]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
