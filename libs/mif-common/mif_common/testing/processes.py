"""Real service processes for end-to-end tests and benchmarks: uvicorn on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bound_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound on loopback (not listening): its port is ours until it is closed."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@dataclass
class ServiceProcess:
    """A service as a uvicorn process. Its port is held from construction to launch by a bound socket the
    process inherits (`mif_common.testing.serve_socket`): a port taken from `free_port()` and bound later by
    the child could be taken meanwhile by a process of another suite started in parallel (two xdist
    workers), whose health check would then answer for this one. The parent closes its copy once the child
    has it, so a stopped service refuses connections as a crashed one does; a relaunch binds the same port
    again."""

    name: str
    factory: str  # "mif_auth.main:create_app"
    env: dict[str, str]
    log_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _socket: socket.socket | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.port == 0:
            self._socket = bound_socket()
            self.port = int(self._socket.getsockname()[1])

    def _take_socket(self) -> socket.socket:
        """The reserved socket (or, for a relaunch, a new one on the same port)."""
        sock, self._socket = self._socket, None
        return sock if sock is not None else bound_socket(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, *, timeout: float = 90.0) -> ServiceProcess:
        """Launch and wait until `/health/ready` answers 200; a process that never gets ready is stopped."""
        self.launch()
        try:
            return self.wait_ready(timeout=timeout)
        except BaseException:
            self.stop()
            raise

    def launch(self) -> ServiceProcess:
        """Start the process without waiting (launch several, then `wait_ready` each: faster start-up)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        sock = self._take_socket()
        try:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv
                [
                    sys.executable,
                    "-m",
                    "mif_common.testing.serve_socket",
                    "--fd",
                    str(sock.fileno()),
                    self.factory,
                ],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(sock.fileno(),),
            )
        finally:
            sock.close()
        return self

    def wait_ready(self, *, timeout: float = 90.0) -> ServiceProcess:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start-up; see {self.log_path}:\n{self.tail()}")
            try:
                # Ready, not just live: database and broker reachable, event queue declared and bound.
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready in {timeout}s; see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
