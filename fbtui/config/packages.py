"""environment.yaml's package entries: each one is a package spec, never a piece of a command.

apt entries follow Debian's package grammar, pip entries are PEP 508 requirements; anything that
could end a Dockerfile instruction, pass an option or reach a shell is refused where it is written.
Options to pip have their own typed fields (PipOptions), rendered quoted by the image planner.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

MAX_ENTRY = 500  # a requirement or URL longer than this is not a typo we want to quote back whole

# name[:arch][=version][/release]: a Debian name is lower-case alphanumerics and + - . (at least two
# characters, starting alphanumeric); apt reads a trailing '-' as "remove", so it is refused.
APT_RE = re.compile(
    r"[a-z0-9][a-z0-9+.-]*[a-z0-9+.]"
    r"(?::[a-z0-9][a-z0-9-]*)?"
    r"(?:=[0-9][A-Za-z0-9.+~:-]*)?"
    r"(?:/[a-z0-9][a-z0-9.-]*)?"
)
# Characters no package spec needs and that mean something to a Dockerfile or a shell.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\`$]")
_PATH_RE = re.compile(r"/[A-Za-z0-9._/-]*")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def check_apt(entry: str) -> str:
    if not APT_RE.fullmatch(entry):
        why = "expected a Debian package such as 'git', 'libgl1=1.7.0-1' or 'libc6:amd64'"
        if entry.startswith("-"):
            why = "apt options are not accepted here"
        elif any(c.isspace() for c in entry):
            why += " (one package per entry, no spaces or newlines)"
        raise ValueError(f"{why}, got {_shown(entry)}")
    return entry


def check_pip(entry: str) -> str:
    """A PEP 508 requirement: `name[extras] specifiers ; marker` or `name @ https://...`."""
    from packaging.requirements import InvalidRequirement, Requirement

    example = "expected a requirement such as 'numpy>=1.24' or 'name @ https://host/name.whl'"
    if entry.lstrip().startswith("-"):
        raise ValueError(f"pip options go in pip_options (index_url, extra_index_urls, find_links, pre), "
                         f"got {_shown(entry)}")
    if len(entry) > MAX_ENTRY or _FORBIDDEN.search(entry):
        bad = "is too long" if len(entry) > MAX_ENTRY else "holds a newline, control character, \\, ` or $"
        raise ValueError(f"{example}; this entry {bad}: {_shown(entry)}")
    try:
        req = Requirement(entry)
    except InvalidRequirement as e:
        first = str(e).splitlines()[0] if str(e) else "not a requirement"
        raise ValueError(f"{example}, got {_shown(entry)} ({first})") from None
    if req.url is not None:
        check_url(req.url, what="a URL requirement", schemes=("https",))
    return entry


def check_url(url: str, *, what: str, schemes: tuple[str, ...] = ("https", "http")) -> str:
    """An index or download URL: no credentials (they would be in the image's history)."""
    if len(url) > MAX_ENTRY or _FORBIDDEN.search(url) or any(c.isspace() for c in url):
        raise ValueError(f"{what} must be one URL without spaces or control characters, got {_shown(url)}")
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"{what} must be a {' or '.join(s + '://' for s in schemes)} URL, got {_shown(url)}")
    if parts.username or parts.password:
        raise ValueError(f"{what} must not carry credentials (they would be in the image history): "
                         "put the index with its credentials in lab.yaml build.pip_index_url")
    return url


AptEntry = Annotated[str, AfterValidator(check_apt)]
PipEntry = Annotated[str, AfterValidator(check_pip)]


class PipOptions(BaseModel):
    """Options for the environment's pip install, each rendered as its own quoted argument."""

    model_config = ConfigDict(extra="forbid")

    index_url: str | None = None
    extra_index_urls: list[str] = Field(default_factory=list)
    find_links: list[str] = Field(default_factory=list)  # URLs, or absolute folders inside the image
    pre: bool = False

    @field_validator("index_url")
    @classmethod
    def _index(cls, v: str | None) -> str | None:
        return None if v is None else check_url(v, what="an index URL")

    @field_validator("extra_index_urls")
    @classmethod
    def _extra(cls, v: list[str]) -> list[str]:
        return [check_url(u, what="an index URL") for u in v]

    @field_validator("find_links")
    @classmethod
    def _links(cls, v: list[str]) -> list[str]:
        for link in v:
            if not (link.startswith("/") and _PATH_RE.fullmatch(link) and ".." not in link.split("/")):
                check_url(link, what="find_links (a URL or an absolute folder)")
        return v

    def args(self) -> list[str]:
        out: list[str] = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        for link in self.find_links:
            out += ["--find-links", link]
        if self.pre:
            out.append("--pre")
        return out

