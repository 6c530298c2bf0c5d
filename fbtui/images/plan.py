"""What each layer is made of, and its content hash. Computing a plan touches no engine.

A layer's hash covers its Dockerfile text, every context file's path, mode and content hash, its
parent's hash, its build args and the build settings that can change what it installs. No mtimes,
no absolute paths: the same inputs give the same tag in any process on any machine.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fbtui.errors import ConfigError
from fbtui.images.credentials import PIP_RUN, IndexCredentials, without_credentials
from fbtui.sources import FileSet, SourceFile, build_files, file_sha256

if TYPE_CHECKING:
    from fbtui.config.models import BuildSettings
    from fbtui.lab import Lab

HASH_LEN = 16
SETTINGS_DIR = ".fb-build"  # inside the base context: CA bundle, pip.conf, wheelhouse, pip-run
PIP_RUN_PATH = "/opt/fb/build/pip-run"  # where Dockerfile.base puts SETTINGS_DIR's pip-run


@dataclass
class ContextEntry:
    arcname: str  # path inside the build context
    source: Path | None = None
    data: bytes | None = None  # generated content (Dockerfile, pip.conf)
    mode: int = 0o644

    def digest(self) -> str:
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        assert self.source is not None
        return file_sha256(self.source)

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else (self.source.stat().st_size if self.source else 0)


@dataclass
class Layer:
    kind: str  # base | env | proj
    name: str  # "base", the environment's or the project's name
    dockerfile: str
    entries: list[ContextEntry]
    build_args: dict[str, str]
    parent: Layer | None
    lab: str
    skipped: list[SourceFile] = field(default_factory=list)
    sent_secrets: list[SourceFile] = field(default_factory=list)  # tracked files that look like credentials
    _hash: str | None = None

    @property
    def repo(self) -> str:
        return "fb/base" if self.kind == "base" else f"fb/{self.kind}-{self.name}"

    @property
    def inputs_hash(self) -> str:
        if self._hash is None:
            manifest = {
                "kind": self.kind, "name": self.name, "dockerfile": self.dockerfile,
                "files": [[e.arcname, e.mode, e.digest()] for e in sorted(self.entries, key=lambda e: e.arcname)],
                "args": dict(sorted(self.build_args.items())),
                "parent": self.parent.inputs_hash if self.parent else None,
            }
            self._hash = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        return self._hash

    @property
    def tag(self) -> str:
        return f"{self.repo}:{self.inputs_hash[:HASH_LEN]}"

    @property
    def chain(self) -> list[Layer]:
        """Bottom (base) first."""
        out: list[Layer] = []
        layer: Layer | None = self
        while layer is not None:
            out.append(layer)
            layer = layer.parent
        return out[::-1]

    @property
    def notes(self) -> list[str]:
        """Warnings about this layer's files: what was not sent and why, and credentials that were."""
        return [f.note() for f in (*self.skipped, *self.sent_secrets)]

    @property
    def context_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def labels(self, commit: str | None) -> dict[str, str]:
        labels = {"fb.lab": self.lab, "fb.layer": self.kind, "fb.name": self.name,
                  "fb.inputs-hash": self.inputs_hash}
        if self.parent:
            labels["fb.parent"] = self.parent.tag
        if commit:
            labels["fb.commit"] = commit
        return labels


def _files(lab: Lab, folder: str, prefix_strip: str, arc_prefix: str) -> tuple[list[ContextEntry], FileSet]:
    fs = build_files(lab.root, [folder], lab.config.build.max_untracked_size)
    entries = [ContextEntry(arc_prefix + f.rel[len(prefix_strip):], f.path, mode=f.mode) for f in fs.files]
    return entries, fs


def _sent(secrets: list[SourceFile], entries: list[ContextEntry]) -> list[SourceFile]:
    """The tracked credentials that are really in the context (a layer may use only some files)."""
    paths = {e.source for e in entries}
    return [f for f in secrets if f.path in paths]


def pip_conf(settings: BuildSettings, wheelhouse: bool, *, secret: bool = False) -> str:
    """pip's settings for builds; index credentials only in the `secret` one, which no layer holds."""

    def url(u: str) -> str:
        return u if secret else without_credentials(u)[0]

    lines = ["[global]", "no-cache-dir = true", "disable-pip-version-check = true"]
    if settings.ca_bundle:
        lines.append("cert = /opt/fb/build/ca.crt")
    if settings.pip_index_url:
        lines.append(f"index-url = {url(settings.pip_index_url)}")
    if settings.pip_extra_index_urls:
        lines.append("extra-index-url = " + " ".join(url(u) for u in settings.pip_extra_index_urls))
    if wheelhouse:
        lines.append("find-links = /opt/fb/build/wheels")
    return "\n".join(lines) + "\n"


def index_credentials(lab: Lab) -> IndexCredentials | None:
    """lab.yaml's pip index credentials, if its index URLs carry any; they need build.network: host
    (they reach a build over loopback, see fbtui/images/credentials.py)."""
    s = lab.config.build
    urls = [("pip_index_url", s.pip_index_url)] if s.pip_index_url else []
    urls += [(f"pip_extra_index_urls[{i}]", u) for i, u in enumerate(s.pip_extra_index_urls)]
    with_creds = [key for key, u in urls if without_credentials(u)[1]]
    if not with_creds:
        return None
    if s.network != "host":
        raise ConfigError(
            f"build.{with_creds[0]} carries credentials, which reach a build only over loopback: "
            "that needs build.network: host (or drop the credentials from the URL)",
            file="lab.yaml", line=lab.source.line_of(("build", "network")), key="build.network")
    wheelhouse = bool(s.wheelhouse)
    return IndexCredentials(pip_conf(s, wheelhouse), pip_conf(s, wheelhouse, secret=True))


def _setting_path(lab: Lab, key: str, value: str, kind: str) -> Path:
    """A path from lab.yaml's build: section (relative to the lab root), which must exist."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else lab.root / path
    if not (path.is_file() if kind == "file" else path.is_dir()):
        raise ConfigError(f"{path} is not a {kind}", file="lab.yaml", line=lab.source.line_of(("build", key)),
                          key=f"build.{key}")
    return path


def _settings_entries(lab: Lab) -> list[ContextEntry]:
    """The build settings as files in the base context, used by every pip call in every layer."""
    s = lab.config.build
    entries: list[ContextEntry] = []
    if s.ca_bundle:
        entries.append(ContextEntry(f"{SETTINGS_DIR}/ca.crt", _setting_path(lab, "ca_bundle", s.ca_bundle, "file")))
    if s.wheelhouse:
        wh = _setting_path(lab, "wheelhouse", s.wheelhouse, "folder")
        wheels = sorted(p for p in wh.iterdir() if p.suffix in (".whl", ".gz", ".zip"))
        entries += [ContextEntry(f"{SETTINGS_DIR}/wheels/{p.name}", p) for p in wheels]
    entries.append(ContextEntry(f"{SETTINGS_DIR}/pip.conf", data=pip_conf(s, bool(s.wheelhouse)).encode()))
    entries.append(ContextEntry(f"{SETTINGS_DIR}/pip-run", data=PIP_RUN.encode(), mode=0o755))
    if s.base_image_id:  # a new pin is a new base tag; the image keeps a note of what it started from
        entries.append(ContextEntry(f"{SETTINGS_DIR}/base-image", data=f"{s.base_image} {s.base_image_id}\n".encode()))
    creds = index_credentials(lab)
    if creds is not None:  # tells pip-run to fetch the credentials (a port and a key, nothing secret)
        entries.append(ContextEntry(f"{SETTINGS_DIR}/credentials", data=creds.marker))
    return entries


def base_layer(lab: Lab) -> Layer:
    path = lab.root / "Dockerfile.base"
    if not path.is_file():
        raise ConfigError("Dockerfile.base is missing from the lab root", file="Dockerfile.base")
    entries, fs = _files(lab, "common", "", "")
    # the lab-wide suites are read by fbtui, not in the image: editing one must not rebuild every layer
    entries = [e for e in entries if e.arcname != "common/suites.yaml"]
    entries += _settings_entries(lab)
    args = {"BASE_IMAGE": lab.config.build.base_image, **lab.config.build.build_args}
    return Layer("base", "base", path.read_text(), entries, args, None, lab.config.name, fs.skipped,
                 _sent(fs.sent_secrets, entries))


def _pip(pip_run: bool) -> str:
    """The pip command of a generated RUN; through pip-run when the index needs credentials."""
    return f"{PIP_RUN_PATH} python3 -m pip" if pip_run else "python3 -m pip"


def env_dockerfile(apt: list[str], pip: list[str], has_requirements: bool, pip_options: list[str] | None = None,
                   pip_run: bool = False) -> str:
    """Entries are validated package specs (fbtui/config/packages.py) and quoted anyway."""
    lines = ["ARG FB_PARENT", "FROM ${FB_PARENT}"]
    if apt:
        lines.append("RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
                     f"--no-install-recommends {shlex.join(apt)} && rm -rf /var/lib/apt/lists/*")
    if has_requirements:
        lines.append("COPY requirements.txt /opt/fb/env/requirements.txt")
    if pip or has_requirements:
        args = [*(pip_options or []), *pip, *(["-r", "/opt/fb/env/requirements.txt"] if has_requirements else [])]
        lines.append(f"RUN {_pip(pip_run)} install {shlex.join(args)}")
    return "\n".join(lines) + "\n"


def env_layer(lab: Lab, name: str) -> Layer:
    spec = lab.load_environment(name)
    folder = f"environments/{name}"
    entries, fs = _files(lab, folder, folder + "/", "")
    custom = next((e for e in entries if e.arcname == "Dockerfile"), None)
    if custom is not None:
        dockerfile = custom.source.read_text() if custom.source else ""
        entries.remove(custom)
    else:
        has_req = any(e.arcname == "requirements.txt" for e in entries)
        dockerfile = env_dockerfile(spec.apt, spec.pip, has_req, spec.pip_options.args(),
                                    pip_run=index_credentials(lab) is not None)
        entries = [e for e in entries if e.arcname == "requirements.txt"]  # nothing else is used
    base = base_layer(lab)
    if spec.base_image:  # e.g. a CUDA image for a GPU environment
        base.build_args["BASE_IMAGE"] = spec.base_image
    return Layer("env", name, dockerfile, entries, dict(spec.build_args), base, lab.config.name, fs.skipped,
                 _sent(fs.sent_secrets, entries))


def project_dockerfile(has_requirements: bool, pip_run: bool = False) -> str:
    lines = ["ARG FB_PARENT", "FROM ${FB_PARENT}"]
    if has_requirements:  # before the code, so that a code edit keeps the installed packages cached
        lines += ["COPY requirements.txt /fb/project/requirements.txt",
                  f"RUN {_pip(pip_run)} install -r /fb/project/requirements.txt"]
    lines += ["COPY . /fb/project", "ENV FB_PROJECT_DIR=/fb/project", "WORKDIR /fb"]
    return "\n".join(lines) + "\n"


def project_layer(lab: Lab, name: str) -> Layer:
    project = lab.project(name)
    folder = f"projects/{name}"
    entries, fs = _files(lab, folder, folder + "/", "")
    # project.yaml reaches stages as /fb/config.yaml: a config edit must not rebuild the image.
    entries = [e for e in entries if e.arcname != "project.yaml"]
    has_req = any(e.arcname == "requirements.txt" for e in entries)
    env = env_layer(lab, project.environment)
    dockerfile = project_dockerfile(has_req, pip_run=index_credentials(lab) is not None)
    return Layer("proj", name, dockerfile, entries, {}, env, lab.config.name, fs.skipped,
                 _sent(fs.sent_secrets, entries))
