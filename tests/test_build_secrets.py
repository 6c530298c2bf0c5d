"""Nothing secret in images (#12, part 7): files that look like credentials stay out of build contexts,
and pip index credentials are used during a build without being left in any layer, the image config,
its history or a build arg (a real engine, a loopback index that requires basic auth)."""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fbtui.errors import ConfigError
from fbtui.images.credentials import without_credentials
from fbtui.images.events import BuildEvent
from fbtui.images.plan import index_credentials, pip_conf, project_layer
from fbtui.lab import Lab
from fbtui.sources import looks_secret
from tests.conftest import make_git_lab

PROJECT = "projects/digits-mlp"


def git(root: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@e", "-c", "user.name=t", *args], check=True,
                   capture_output=True)


# ------------------------------------------------------------------ files that look like credentials


@pytest.mark.parametrize(("name", "secret"), [
    (".env", True), (".env.local", True), ("server.pem", True), ("id_rsa", True), ("id_ed25519", True),
    ("credentials", True), ("credentials.json", True), (".netrc", True), ("tls.key", True), (".pypirc", True),
    ("cert.p12", True), ("id_rsa.pub", False), ("id_utils.py", False), ("credentials.py", False),
    ("model.py", False), ("environment.yaml", False), ("keys.txt", False),
])
def test_credential_names(name: str, secret: bool) -> None:
    assert looks_secret(f"projects/p/sub/{name}") is secret


def test_untracked_credentials_are_not_sent_and_tracked_ones_warn(tmp_path: Path) -> None:
    root = make_git_lab(tmp_path / "glab")
    proj = root / PROJECT
    (proj / "deploy.key").write_text("tracked on purpose\n")
    git(root, "add", f"{PROJECT}/deploy.key")
    for name in (".env", "credentials.json", "id_rsa", "server.pem", ".netrc", "conf/.pypirc"):
        (proj / name).parent.mkdir(exist_ok=True)
        (proj / name).write_text("SECRET=1\n")
    (proj / "credentials.py").write_text("def login(): ...\n")  # code, and untracked: sent like any new file
    (root / "common/.env").write_text("SECRET=1\n")
    layer = project_layer(Lab(root), "digits-mlp")
    names = {e.arcname for e in layer.entries}
    assert {"credentials.py", "deploy.key"} <= names
    assert not names & {".env", "credentials.json", "id_rsa", "server.pem", ".netrc", "conf/.pypirc"}
    notes = "\n".join(layer.notes)
    for name in (".env", "credentials.json", "id_rsa", "server.pem", ".netrc", "conf/.pypirc"):
        assert f"{PROJECT}/{name}: looks like a credential and is untracked: not sent" in notes
    assert f"{PROJECT}/deploy.key: looks like a credential and git tracks it: it is in the image" in notes
    base = layer.chain[0]
    assert ".env" not in {Path(e.arcname).name for e in base.entries}
    assert base.notes == ["common/.env: looks like a credential and is untracked: not sent (git add it to send it)"]


def test_a_symbolic_link_is_not_sent_and_the_build_says_so(tmp_path: Path) -> None:
    """A model file moved elsewhere and linked back: the image would lack it, and the run would fail
    at import time with nothing at the build saying why."""
    root = make_git_lab(tmp_path / "glab")
    proj = root / PROJECT
    outside = tmp_path / "shared-model.py"
    outside.write_text("SECRET_OUTSIDE_THE_LAB = 1\n")
    (proj / "linked.py").symlink_to(outside)
    (proj / "loop").symlink_to(proj / "loop")  # a link to itself: said, never followed
    layer = project_layer(Lab(root), "digits-mlp")
    assert not {"linked.py", "loop"} & {e.arcname for e in layer.entries}
    assert f"{PROJECT}/linked.py: a symbolic link: not sent (an image gets no links; copy the file in instead)" \
        in layer.notes
    assert any(n.startswith(f"{PROJECT}/loop: a symbolic link") for n in layer.notes)


# ------------------------------------------------------------------ index credentials: planning


def test_pip_conf_in_the_image_has_no_credentials(tmp_path: Path) -> None:
    root = make_git_lab(tmp_path / "glab")
    lab_yaml = root / "lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text() + "  pip_index_url: https://me:t0ken@pypi.example/simple\n"
                        "  pip_extra_index_urls: ['https://__token__:x%40y@extra.example:8443/simple']\n")
    lab = Lab(root)
    creds = index_credentials(lab)
    assert creds is not None
    assert "t0ken" not in creds.public_conf and "x%40y" not in creds.public_conf
    assert "index-url = https://pypi.example/simple" in creds.public_conf
    assert "https://extra.example:8443/simple" in creds.public_conf
    assert "https://me:t0ken@pypi.example/simple" in creds.secret_conf
    layer = project_layer(lab, "digits-mlp")
    for item in layer.chain:
        for entry in item.entries:
            data = entry.data if entry.data is not None else entry.source.read_bytes()  # type: ignore[union-attr]
            assert b"t0ken" not in data and b"x%40y" not in data, entry.arcname
        assert "t0ken" not in item.dockerfile and not any("t0ken" in v for v in item.build_args.values())
    assert pip_conf(lab.config.build, False) == creds.public_conf
    assert without_credentials("https://u:p@[::1]:8080/s?q=1") == ("https://[::1]:8080/s?q=1", True)


def test_credentials_need_host_network(tmp_path: Path, fbtui) -> None:  # type: ignore[no-untyped-def]
    root = make_git_lab(tmp_path / "glab")
    text = (root / "lab.yaml").read_text().replace("network: host", "network: none")
    (root / "lab.yaml").write_text(text + "  pip_index_url: https://me:t0ken@pypi.example/simple\n")
    with pytest.raises(ConfigError, match=r"build\.network: host"):
        project_layer(Lab(root), "digits-mlp")
    proc = fbtui("build", "digits-mlp", cwd=root)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if "network: none" in t)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"fbtui: error: lab.yaml:{line}: build.network: build.pip_index_url carries "
                                  "credentials, which reach a build only over loopback"), proc.stderr
    assert "t0ken" not in proc.stderr and not (root / ".fb").exists()
    doctor = fbtui("doctor", "--json", cwd=root)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert checks["config"]["status"] == "fail" and f"lab.yaml:{line}: build.network: " in checks["config"]["detail"]


# ------------------------------------------------------------------ index credentials: a real build

PKG = "fbsecretpkg"
INDEX_PORT = 47329


def _wheel() -> tuple[str, bytes]:
    """A hand-made pure-Python wheel: fbsecretpkg 1.0 with VALUE = 42."""
    name = f"{PKG}-1.0-py3-none-any.whl"
    files = {
        f"{PKG}.py": b"VALUE = 42\n",
        f"{PKG}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {PKG}\nVersion: 1.0\n".encode(),
        f"{PKG}-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                      b"Tag: py3-none-any\n",
    }
    record = ""
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{PKG}-1.0.dist-info/RECORD,,\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path, data in {**files, f"{PKG}-1.0.dist-info/RECORD": record.encode()}.items():
            z.writestr(path, data)
    return name, buf.getvalue()


class Index:
    """A PyPI 'simple' index on loopback that answers only with basic auth."""

    def __init__(self, user: str, password: str) -> None:
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.wheel_name, self.wheel = _wheel()
        self.authorized: list[str] = []
        self.refused = 0
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != index.auth:
                    index.refused += 1
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="test"')
                    self.end_headers()
                    return
                index.authorized.append(self.path)
                if self.path.rstrip("/") == f"/simple/{PKG}":
                    sha = hashlib.sha256(index.wheel).hexdigest()
                    body = f'<a href="/files/{index.wheel_name}#sha256={sha}">{index.wheel_name}</a>'.encode()
                    kind = "text/html"
                elif self.path == f"/files/{index.wheel_name}":
                    body, kind = index.wheel, "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        # A fixed port: the index URL is in the base image's pip.conf, so a new port would rebuild the
        # base on every run; a second run of this test elsewhere waits for it.
        deadline = time.monotonic() + 120
        while True:
            try:
                self.server = http.server.ThreadingHTTPServer(("127.0.0.1", INDEX_PORT), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        self.port = INDEX_PORT
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index() -> Iterator[tuple[Index, str]]:
    secret = f"tok-{uuid.uuid4().hex}"
    idx = Index("fbuser", secret)
    yield idx, secret
    idx.close()


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_index_credentials_are_used_and_left_nowhere(tmp_path, index, docker_client, builder):  # type: ignore[no-untyped-def]
    from fbtui.images.service import ensure_project_image
    from fbtui.store import Store

    idx, secret = index
    root = make_git_lab(tmp_path / "glab")
    lab_yaml = root / "lab.yaml"
    lab_yaml.write_text(lab_yaml.read_text() + "  pip_extra_index_urls:\n"
                        f"    - http://fbuser:{secret}@127.0.0.1:{idx.port}/simple\n")
    env = root / "environments/torch-cpu/environment.yaml"
    env.write_text(env.read_text() + f"  - {PKG}==1.0\n")
    # A fresh environment layer on every run (the base stays cached: its inputs hold no secret).
    (env.parent / "requirements.txt").write_text(f"# {uuid.uuid4().hex}\n{PKG}==1.0\n")
    (root / PROJECT / "requirements.txt").write_text(f"{PKG}==1.0\n")  # the project layer's pip goes through it too
    (root / PROJECT / ".env").write_text(f"TOKEN={secret}\n")  # untracked: must not be sent
    events: list[BuildEvent] = []
    lab = Lab(root)
    with Store(lab.store_path) as store:
        result = ensure_project_image(lab, "digits-mlp", store=store, emit=events.append,
                                      builder=builder)
    tag = result.tag
    assert {r.layer: r.action for r in result.layers}["fb/env-torch-cpu"] == "built"
    assert any(p.startswith("/files/") for p in idx.authorized), (idx.authorized, idx.refused)
    assert any(e.kind == "skipped-file" and f"{PROJECT}/.env" in e.text for e in events)
    out = docker_client.containers.run(tag, ["python3", "-c", f"import {PKG}; print({PKG}.VALUE)"], remove=True)
    assert out.decode().strip() == "42"

    needle = secret.encode()
    for layer in result.layers:
        history = docker_client.api.history(layer.tag)
        assert needle not in repr(history).encode(), layer.tag
        assert needle not in repr(docker_client.api.inspect_image(layer.tag)).encode(), layer.tag
    if builder == "classic":  # every byte of every layer (1.8 GB, ~40 s): once; the layers' recipe is shared
        tail, size = b"", 0
        for chunk in docker_client.api.get_image(tag, chunk_size=4 << 20):  # docker save
            assert needle not in tail + chunk
            tail, size = chunk[-len(needle):], size + len(chunk)
        assert size > 1_000_000
    conf = docker_client.containers.run(tag, ["cat", "/opt/fb/build/pip.conf"], remove=True).decode()
    assert f"http://127.0.0.1:{idx.port}/simple" in conf and secret not in conf
