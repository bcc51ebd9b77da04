"""Real servers the tests talk to: a fresh PostgreSQL database on the server the machine runs
(skipping with a reason when none answers), and optuna-dashboard started as a user starts it.
Written once here for every test that needs them."""

from __future__ import annotations

import getpass
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PG_SERVER = os.environ.get("LSTM_SWEEP_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
#: Seconds optuna-dashboard may take to answer after it is started.
STARTUP_S = 30


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a database of its own (``postgresql://USER@HOST:PORT/NAME``), dropped after;
    the test is skipped when no server answers at ``PG_SERVER``."""
    # psycopg2 makes it: the driver a URL names is what some tests put under test.
    psycopg2 = pytest.importorskip("psycopg2")
    from sqlalchemy.engine import make_url

    server = make_url(PG_SERVER)
    user = server.username or getpass.getuser()
    try:
        admin = psycopg2.connect(host=server.host, port=server.port or 5432, user=user,
                                 password=server.password, dbname=server.database or "postgres",
                                 connect_timeout=3)  # fmt: skip
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG_SERVER} ({str(exc).strip()})")
    admin.autocommit = True
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        url = server.set(username=user, port=server.port or 5432, database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@contextmanager
def small_tmpfs(folder: Path) -> Iterator[Path]:
    """``folder`` on a 64 KiB tmpfs (root only: skipped elsewhere), unmounted after."""
    folder.mkdir()
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                        capture_output=True, check=False).returncode  # fmt: skip
    if rc != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard_server(command: list[str], log_path: Path) -> Iterator[str]:
    """optuna-dashboard (``command``: the program and its storage, without host and port)
    started on a free port; its base URL once it answers. Stopped after."""
    port = free_port()
    log = log_path.open("w+")
    argv = [*command, "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"optuna-dashboard exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(base + "/api/meta", timeout=10):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"optuna-dashboard did not answer on {base} in {STARTUP_S} s")
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def get(url: str) -> tuple[str, bytes]:
    """A GET of ``url``: its content type and body."""
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.headers.get("Content-Type", ""), r.read()


def get_json(url: str) -> dict:
    return json.loads(get(url)[1])


class _Forward(http.server.BaseHTTPRequestHandler):
    """Every request passed on to the server's ``upstream``; an HTML answer gets the server's
    ``script`` before its ``</body>``."""

    server: _ProbingProxy

    def log_message(self, *_args: object) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() in ("content-type", "accept")}  # fmt: skip
        request = urllib.request.Request(self.server.upstream + self.path, data=body,
                                         method=self.command, headers=headers)  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                status, kind, data = r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            status, kind, data = e.code, e.headers.get("Content-Type", ""), e.read()
        if kind.startswith("text/html"):
            data = data.replace(b"</body>", self.server.script.encode() + b"</body>")
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward


class _ProbingProxy(http.server.ThreadingHTTPServer):
    def __init__(self, upstream: str, script: str) -> None:
        self.upstream, self.script = upstream, script
        super().__init__(("127.0.0.1", 0), _Forward)


@contextmanager
def probing_proxy(upstream: str, script: str) -> Iterator[str]:
    """A same-origin window onto a web app (optuna-dashboard): its pages with ``script``
    added, so a test can measure the layout a browser gave them (headless Chromium runs no
    script of a test's own on a page it loads). Yields the proxy's base URL."""
    server = _ProbingProxy(upstream, script)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
