"""The gunicorn worker `serve` runs (gateway/live/server.py KeepAliveThreadWorker), under a real gunicorn
with a tiny WSGI app that answers with the ids of the thread and the worker process that served it, over raw
keep-alive sockets."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.e2e.conftest import free_port

APP = '''
import os
import threading

def app(environ, start_response):
    body = ("%s %d %d" % (environ["PATH_INFO"], threading.get_ident(), os.getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

# Imported by the arbiter before it forks its worker, so the worker sees the value.
CONFIG = '''
import gateway.live.server
from gateway.live.balance import on_starting  # as `serve` sets it: the workers' shared connection counts
gateway.live.server.KEEP_THREAD_MS = {keep_ms}
'''


@pytest.fixture
def server(tmp_path):
    started = []

    def start(threads: int, keep_ms: int = 5, workers: int = 1) -> int:
        (tmp_path / "tinyapp.py").write_text(APP)
        (tmp_path / "conf.py").write_text(CONFIG.format(keep_ms=keep_ms))
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(tmp_path / "conf.py"), "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), "--threads", str(threads),
             "-k", "gateway.live.server.KeepAliveThreadWorker",
             "--chdir", str(tmp_path), "tinyapp:app"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        started.append(proc)
        deadline = time.monotonic() + 20
        answered: set[str] = set()  # by each worker: every one of them has started
        while time.monotonic() < deadline:
            try:
                answered.add(requests.get(f"http://127.0.0.1:{port}/up", timeout=1).text.split()[2])
                if len(answered) == workers:
                    return port
            except requests.RequestException:
                assert proc.poll() is None, "gunicorn exited"
            time.sleep(0.05)
        raise AssertionError("gunicorn did not start")

    yield start
    for proc in started:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Conn:
    """One keep-alive HTTP/1.1 connection; answers read by Content-Length."""

    def __init__(self, port: int, timeout: float = 3.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.worker = 0  # the pid of the worker that answered last

    def send(self, *paths: str) -> None:
        self.sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))

    def answer(self) -> tuple[str, int]:
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
        while len(self.buf) < length:
            self.buf += self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        path, thread, worker = body.decode().split()
        self.worker = int(worker)
        return path, int(thread)

    def get(self, path: str) -> int:
        self.send(path)
        answered, thread = self.answer()
        assert answered == path
        return thread

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        assert data, "connection closed by the server"
        return data

    def close(self) -> None:
        self.sock.close()


def test_a_connection_keeps_its_thread_between_requests(server):
    port = server(threads=4, keep_ms=2000)
    a = Conn(port)
    threads_a = {a.get("/a0")}
    b = Conn(port)  # plain gthread hands it the pool's one idle thread, the one that just answered a
    threads_b = {b.get("/b0")}
    for i in range(1, 5):
        threads_a.add(a.get(f"/a{i}"))
        threads_b.add(b.get(f"/b{i}"))
    assert len(threads_a) == 1 and len(threads_b) == 1
    assert threads_a != threads_b
    a.close()
    b.close()


def test_with_more_connections_than_threads_none_waits_for_anothers_idle_time(server):
    """A thread keeps its connection only while there is a thread per connection: a connection accepted
    during a keep may wait for that keep once, never again."""
    keep = 4.0
    port = server(threads=1, keep_ms=int(keep * 1000))
    conns = [Conn(port, timeout=3 * keep) for _ in range(3)]
    waits = []
    for i in range(3):
        for n, c in enumerate(conns):
            started = time.monotonic()
            assert c.get(f"/c{n}-{i}")
            waits.append(time.monotonic() - started)
    assert sum(w > keep / 2 for w in waits) <= 1, waits
    for c in conns:
        c.close()


def test_pipelined_requests_are_answered_in_order(server):
    port = server(threads=2)
    c = Conn(port)
    c.send("/one", "/two", "/three")
    assert [c.answer()[0] for _ in range(3)] == ["/one", "/two", "/three"]
    assert c.get("/four")
    c.close()


def test_a_client_closing_between_requests_frees_its_thread(server):
    port = server(threads=1, keep_ms=10_000)
    first = Conn(port)
    assert first.get("/first")
    first.close()  # the thread keeping it wakes on the close and returns
    second = Conn(port)
    assert second.get("/second")  # the only thread, within the 3 s timeout
    second.close()


def test_new_connections_go_to_the_worker_holding_fewest(server):
    """Left to the kernel, a few keep-alive clients often landed on one worker (gateway/live/balance.py): here
    six connections opened one after another are three on each worker, and after one worker's connections
    close, the next ones go to it."""
    from collections import Counter

    port = server(threads=4, workers=2)
    conns = []
    for i in range(6):
        c = Conn(port)
        assert c.get(f"/c{i}")
        conns.append(c)
    per_worker = Counter(c.worker for c in conns)
    assert sorted(per_worker.values()) == [3, 3], per_worker
    freed = conns[0].worker
    for c in conns:
        if c.worker == freed:
            c.close()
    time.sleep(0.5)  # the worker sees the closes on its next turn
    fresh = [Conn(port) for _ in range(2)]
    for i, c in enumerate(fresh):
        assert c.get(f"/fresh{i}")
    assert [c.worker for c in fresh] == [freed, freed]
    for c in conns + fresh:
        c.close()
