"""A tcp:// host with TLS: a second private daemon with --tlsverify on loopback, certificates made
here with openssl. REQUESTS_CA_BUNDLE (set on these machines) must not override the host's CA."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_git_lab

pytestmark = [pytest.mark.slow, pytest.mark.engine]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=fb-test-ca", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName = IP:127.0.0.1\nextendedKeyUsage = serverAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server-key.pem", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "client.cnf").write_text("extendedKeyUsage = clientAuth\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "client.csr", "-subj", "/CN=lab",
            cwd=d)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "client.cnf", cwd=d)


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory, docker_host):  # type: ignore[no-untyped-def]
    from tests.engines import SecondDaemon

    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    daemon = SecondDaemon(tls=certs)
    daemon.start()
    yield daemon, certs
    daemon.stop()


def test_tls_host_is_reached_with_its_own_ca(tmp_path, fbtui, fbtui_process, tls_daemon, monkeypatch):  # type: ignore[no-untyped-def]
    daemon, certs = tls_daemon
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")  # the trap
    lab = make_git_lab(tmp_path / "tlab")
    y = lab / "lab.yaml"
    y.write_text(y.read_text().replace("hosts:\n", (
        f"hosts:\n  secure:\n    url: {daemon.url}\n"
        f"    tls: {{ca: {certs / 'ca.pem'}, cert: {certs / 'cert.pem'}, key: {certs / 'key.pem'}}}\n"), 1))
    proc = fbtui("hosts", "--json", cwd=lab)
    rows = {r["host"]: r for r in json.loads(proc.stdout)}
    assert rows["secure"]["reachable"], rows["secure"]["error"]
    assert rows["secure"]["api"].startswith("1.")
    # Without the client certificate the daemon refuses: TLS is really verified both ways.
    y.write_text(y.read_text().replace(f", cert: {certs / 'cert.pem'}, key: {certs / 'key.pem'}", ""))
    rows = {r["host"]: r for r in json.loads(fbtui_process("hosts", "--json", cwd=lab).stdout)}
    assert not rows["secure"]["reachable"] and "cannot reach the Docker engine" in rows["secure"]["error"]
    assert os.environ["REQUESTS_CA_BUNDLE"]
