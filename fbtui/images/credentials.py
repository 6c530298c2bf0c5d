"""Package-index credentials during a build, in no layer, no image config and no build arg.

The pip.conf baked into the base image names lab.yaml's indexes without their credentials. While a
layer builds, fbtui serves the full pip.conf on a fixed loopback port (builds use network: host);
`pip-run`, which every generated pip RUN goes through, fetches it into a file in /tmp, points
PIP_CONFIG_FILE at it for that one command and deletes it before the RUN ends, so the layer never
holds it. The port is fixed (not a build arg: the classic builder shows those in `docker history`),
so only one build with credentials serves at a time on a machine; the others wait for the port.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from fbtui.errors import FBError

PORT = 47319
WAIT_FOR_PORT = 600.0  # seconds another credentialed build may hold the port

# Runs inside the image: plain Python 3 (any version a base image has), no dependencies.
PIP_RUN = '''#!/usr/bin/env python3
"""Run a command (pip) with lab.yaml's index credentials, fetched from fbtui on the build host for
this command only and deleted after it: no layer holds them."""
import os
import subprocess
import sys
import tempfile
import urllib.request

here = os.path.dirname(os.path.abspath(__file__))
cmd = sys.argv[1:]
marker = os.path.join(here, "credentials")
if not os.path.exists(marker):
    os.execvp(cmd[0], cmd)
port, key = open(marker).read().split()
try:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    conf = opener.open("http://127.0.0.1:%s/pip.conf?for=%s" % (port, key), timeout=30).read()
except OSError as e:
    sys.stderr.write("fb: warning: no index credentials from fbtui on 127.0.0.1:%s (%s); "
                     "pip runs without them\\n" % (port, e))
    os.execvp(cmd[0], cmd)
fd, path = tempfile.mkstemp(prefix="fb-pip-", suffix=".conf")
try:
    os.write(fd, conf)
    os.close(fd)
    sys.exit(subprocess.call(cmd, env=dict(os.environ, PIP_CONFIG_FILE=path)))
finally:
    os.unlink(path)
'''


def without_credentials(url: str) -> tuple[str, bool]:
    """The URL with any user:password@ removed, and whether there was one."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, False
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment)), True


@dataclass(frozen=True)
class IndexCredentials:
    public_conf: str  # baked into the base image
    secret_conf: str  # served during builds only

    @property
    def key(self) -> str:
        """Names which lab's pip.conf a build wants (not derived from the secret)."""
        return hashlib.sha256(self.public_conf.encode()).hexdigest()[:16]

    @property
    def marker(self) -> bytes:
        return f"{PORT} {self.key}\n".encode()


class _Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True  # a TIME_WAIT from the last build must not block; a listener still does
    daemon_threads = True
    creds: IndexCredentials


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        if self.path != f"/pip.conf?for={self.server.creds.key}":
            self.send_error(404)
            return
        body = self.server.creds.secret_conf.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # never log requests: nothing of this belongs in a terminal or log file


def _bind(creds: IndexCredentials, waiting: Callable[[str], None]) -> _Server:
    deadline, told = time.monotonic() + WAIT_FOR_PORT, False
    while True:
        try:
            server = _Server(("127.0.0.1", PORT), _Handler)
            server.creds = creds
            return server
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise FBError(f"cannot serve index credentials on 127.0.0.1:{PORT}: {e}") from None
            if time.monotonic() > deadline:
                raise FBError(f"127.0.0.1:{PORT} stayed in use for {WAIT_FOR_PORT:.0f} s: another build with "
                              "index credentials, or another program, holds it",
                              hint="wait for the other build, or stop what listens there") from None
            if not told:
                told = True
                waiting(f"waiting for 127.0.0.1:{PORT}: another build is using index credentials")
            time.sleep(0.25)


@contextlib.contextmanager
def serving(creds: IndexCredentials | None, waiting: Callable[[str], None] = lambda _: None) -> Iterator[None]:
    """Serve the credentialed pip.conf on loopback for the duration of one build (no-op without one)."""
    if creds is None:
        yield
        return
    server = _bind(creds, waiting)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="fb-index-credentials")
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
