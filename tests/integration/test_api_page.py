"""The service's web page in a real headless Chromium (Debian's package), driven through the
DevTools protocol: a visitor types the token into the form, as a person would."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.security.test_api import TOKEN_A, TOKEN_B, _env, _hello, _upload, _wait
from tests.services import Server

pytestmark = pytest.mark.integration


class Browser:
    """One headless Chromium tab, spoken to over the DevTools protocol's WebSocket (the few frames
    that needs, written out here rather than a test dependency)."""

    def __init__(self, workdir: Path):
        exe = shutil.which("chromium-headless-shell") or shutil.which("chromium")
        if exe is None:
            if os.environ.get("XBUILD_REQUIRE_INTEGRATION") == "1":
                pytest.fail("no headless browser: apt-get install chromium-headless-shell")
            pytest.skip("no headless browser: apt-get install chromium-headless-shell")
        profile = workdir / "chromium"
        self.log = (workdir / "chromium.log").open("wb")
        self.proc = subprocess.Popen([exe, "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                      "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                      f"--user-data-dir={profile}", "about:blank"],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # its own group: see close()
        try:
            port = self._port(profile / "DevToolsActivePort")
            page = next(t for t in requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
                        if t["type"] == "page")
            self.sock = self._connect(port, page["webSocketDebuggerUrl"].split(str(port), 1)[1])
        except BaseException:
            self.close()
            raise
        self.n = 0

    def _port(self, path: Path) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if path.is_file() and path.read_text().strip():
                return int(path.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError("chromium did not start its DevTools server")

    @staticmethod
    def _connect(port: int, path: str) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                     f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        return sock

    def _recv_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("chromium closed the connection")
            data += chunk
        return data

    def _frame(self) -> str:
        message = b""
        while True:
            first, second = self._recv_exact(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack(">H", self._recv_exact(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self._recv_exact(8))[0]
            message += self._recv_exact(size)
            if first & 0x80:  # FIN: the last fragment
                return message.decode()

    def call(self, method: str, **params) -> dict:
        self.n += 1
        payload = json.dumps({"id": self.n, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        size = len(payload)
        header = bytes([0x81]) + (bytes([0x80 | size]) if size < 126 else
                                  bytes([0x80 | 126]) + struct.pack(">H", size) if size < 65536 else
                                  bytes([0x80 | 127]) + struct.pack(">Q", size))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while True:
            reply = json.loads(self._frame())
            if reply.get("id") == self.n:
                assert "error" not in reply, reply
                return reply["result"]

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.until("document.readyState === 'complete' && document.querySelector('#login') !== null")

    def until(self, condition: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := self.js(condition):
                return value
            time.sleep(0.2)
        raise AssertionError(f"not true after {timeout}s: {condition}\n{self.js('document.body.innerHTML')[:3000]}")

    def sign_in(self, token: str) -> None:
        self.js(f"document.getElementById('token').value = {json.dumps(token)};"
                "document.getElementById('login').requestSubmit()")

    def close(self) -> None:
        if getattr(self, "sock", None) is not None:
            self.sock.close()
        # /usr/bin/chromium-headless-shell is a wrapper script: the browser and its helpers are
        # its children, so the whole process group goes, not just the wrapper.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.log.close()


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path)
    yield b
    b.close()


@pytest.fixture(scope="module")
def embedded(engine, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    server = Server(_env(tmp), tmp)
    yield server
    server.stop()


def test_the_page_shows_builds_logs_and_artifacts_in_a_browser(embedded, browser):
    job = _upload(embedded, _hello()).json()
    done = _wait(embedded, job["id"])
    assert done["state"] == "succeeded" and done["os"]  # the release it was built for
    browser.open(f"{embedded.url}/#build={job['id']}")
    assert browser.js("document.getElementById('app').hidden")       # nothing shown before a token
    browser.sign_in(TOKEN_A)
    browser.until(f"document.querySelector('tr.selected[data-id=\"{job['id']}\"]') !== null")  # listed, selected
    cells = browser.js(f"[...document.querySelector('tr[data-id=\"{job['id']}\"]').cells].map(c => c.textContent)")
    assert cells[3] == done["os"]  # build, project, target, os, ...
    browser.until("document.getElementById('log').textContent.includes('ABI gate on')")  # its log
    link = f"/v1/builds/{job['id']}/artifacts/hello-rpi3.tar.gz"
    browser.until(f"document.querySelector('a.artifact[href=\"{link}\"]') !== null")
    assert "succeeded" in browser.js("document.getElementById('detail-title').textContent")
    # Another tenant, in another tab's session: not this build.
    browser.js("sessionStorage.clear()")
    browser.open(f"{embedded.url}/")
    browser.sign_in(TOKEN_B)
    browser.until("!document.getElementById('app').hidden")
    browser.until("!document.getElementById('empty').hidden || document.querySelectorAll('tr.build').length")
    assert job["id"] not in browser.js("document.getElementById('builds').textContent")
    browser.js("sessionStorage.clear()")
    browser.open(f"{embedded.url}/")
    browser.sign_in("wrong")
    browser.until("document.getElementById('error').textContent === 'That token was not accepted.'")
