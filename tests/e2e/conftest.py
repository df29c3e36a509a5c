"""End-to-end fixtures: the REAL server (`phr-gateway serve`, gunicorn) in a subprocess, driven by real clients.

`live_server` is session scoped and parametrized over the same databases as the rest of the suite
(PHR_TEST_DATABASES, default sqlite and postgresql). Every wait is bounded, and every process started here
is stopped here (SIGTERM to gunicorn's arbiter, SIGKILL to its process group after a timeout).
"""
from __future__ import annotations

import json
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from gateway.db import make_engine
from tests.conftest import DATABASES, POSTGRES_URL, fresh_database

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).resolve().parent / "js"
VENV_BIN = Path(sys.executable).parent
PHR_GATEWAY = str(VENV_BIN / "phr-gateway") if (VENV_BIN / "phr-gateway").exists() else shutil.which("phr-gateway")
NODE = shutil.which("node")

APP_ID = "e2e-app"
JS_KEY = "e2e-js-key"
MASTER_KEY = "e2e-master-key"

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def require_node() -> str:
    """The node binary and an installed Parse SDK (from the project's package.json); skip only without node."""
    if NODE is None:
        pytest.skip("node is not installed: the Parse JS SDK end-to-end tests need Node.js (and `npm ci`)")
    if not (ROOT / "node_modules" / "parse" / "package.json").exists():
        npm = shutil.which("npm")
        assert npm, "node_modules/parse is missing and npm is not installed to run `npm ci`"
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=False,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci failed:\n{r.stderr[-3000:]}"
    return NODE


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60, cwd: Path = ROOT) -> dict:
    """Run `phr-gateway ARGS`; return the JSON object on the last line of stdout."""
    r = subprocess.run([PHR_GATEWAY, *args], env=env, cwd=cwd, check=False, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"phr-gateway {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}"
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    assert lines, f"phr-gateway {' '.join(args)} printed nothing on stdout:\n{r.stderr[-3000:]}"
    return json.loads(lines[-1])


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a server or CLI child: ours, minus any PHR_/DATABASE_URL settings of the caller."""
    env = {k: v for k, v in os.environ.items() if not (k.startswith("PHR_") or k == "DATABASE_URL")}
    # The suite's rest-hook receivers listen on 127.0.0.1, which production refuses (SSRF).
    env["PHR_SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS"] = "1"
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    """`phr-gateway serve` in its own process group, with its output in a log file."""

    env: dict[str, str]
    port: int
    log_path: Path
    workers: int = 2
    cwd: Path = ROOT
    proc: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"

    def start(self) -> ServerProcess:
        assert PHR_GATEWAY, "the phr-gateway console script is not installed (pip install -e '.[test]')"
        with open(self.log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [PHR_GATEWAY, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--workers", str(self.workers)],
                env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so that stop() can kill workers too
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} before answering /healthz:\n"
                                   f"{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {START_TIMEOUT}s:\n{self.log_tail()}")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # gunicorn's arbiter stops its workers, then exits
        try:
            proc.wait(timeout=STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            pass
        # Still running, so not reaped: its id is still the id of the group we started. Kill all of it.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable: report, do not hang
            raise RuntimeError(f"server process {proc.pid} did not die after SIGKILL") from None


@dataclass(frozen=True)
class LiveServer:
    url: str  # http://127.0.0.1:<port>
    port: int
    kind: str  # sqlite | postgresql
    database_url: str
    instance_path: str
    app_id: str
    javascript_key: str
    master_key: str
    env: dict[str, str] = field(repr=False)
    process: ServerProcess = field(repr=False)

    @property
    def parse_url(self) -> str:
        return f"{self.url}/parse"

    def master_headers(self) -> dict[str, str]:
        return {"X-Parse-Application-Id": self.app_id, "X-Parse-Master-Key": self.master_key,
                "Content-Type": "application/json"}

    def cli(self, *args: str, timeout: float = 60) -> dict:
        """`phr-gateway ARGS` against this server's database and instance folder."""
        return run_cli(list(args), self.env, timeout=timeout)


def _drop_schema(name: str) -> None:
    engine = make_engine(POSTGRES_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
    except SQLAlchemyError as e:  # pragma: no cover - cleanup is best effort
        warnings.warn(f"could not drop the e2e schema {name}: {e}", stacklevel=1)
    finally:
        engine.dispose()


@contextlib.contextmanager
def running_server(kind: str, tmp_path_factory, name: str, *, workers: int | None = None, **extra_env: str):
    """The real server (phr-gateway serve) on a fresh, migrated database of that kind, with app id, JS key
    and master key set; stopped, and its PostgreSQL schema dropped, on the way out."""
    schema = f"{name}_{os.getpid()}"
    database_url = fresh_database(kind, tmp_path_factory, schema if kind == "postgresql" else f"{name}_{kind}")
    instance = tmp_path_factory.mktemp(f"{name}_instance_{kind}")
    port = free_port()
    env = base_env(
        DATABASE_URL=database_url, PHR_INSTANCE_PATH=str(instance), PHR_BASE_URL=f"http://127.0.0.1:{port}",
        PHR_APP_ID=APP_ID, PHR_JAVASCRIPT_KEY=JS_KEY, PHR_MASTER_KEY=MASTER_KEY, **extra_env,
    )
    kwargs = {"workers": workers} if workers is not None else {}
    server = ServerProcess(env=env, port=port, log_path=instance / "server.log", **kwargs)
    try:
        server.start()
        yield LiveServer(url=server.url, port=port, kind=kind, database_url=database_url,
                         instance_path=str(instance), app_id=APP_ID, javascript_key=JS_KEY,
                         master_key=MASTER_KEY, env=env, process=server)
    finally:
        server.stop()
        if kind == "postgresql":
            _drop_schema(schema)


@pytest.fixture(scope="session", params=DATABASES)
def live_server(request, tmp_path_factory):
    """The real server on a fresh database of each kind."""
    require_node()
    with running_server(request.param, tmp_path_factory, "e2e") as server:
        yield server


def run_node(script: Path, env: dict[str, str], timeout: float = 60) -> tuple[dict, subprocess.CompletedProcess]:
    """Run a Node script; return the JSON object on its last stdout line (and the completed process)."""
    node = require_node()
    try:
        r = subprocess.run([node, str(script)], env={**os.environ, **env}, cwd=ROOT, check=False,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script.name} did not finish within {timeout}s; output so far:\n"
                    f"{(e.stdout or b'')[-3000:]!r}\n{(e.stderr or b'')[-3000:]!r}")
    lines = [line for line in r.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if not isinstance(result, dict):
        pytest.fail(f"{script.name} exited {r.returncode} without a JSON result line.\nstdout:\n"
                    f"{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}")
    return result, r
