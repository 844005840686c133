"""Test helpers other suites reuse (notifications' own tests, end-to-end tests, the benchmark): a real
SMTP server that keeps what it receives, and a tiny JWKS server so a real process trusts test tokens.
The events it consumes are built with their publishers' examples (`mif_auth.testing.user_data`, ...)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- SMTP ------------------------------------------------------------------------------------------


class SmtpSink:
    """A real SMTP server (aiosmtpd, in a thread) on a fixed local port, keeping every message it
    accepts. `stop()` then `start()` takes it down and brings it back on the same port; recipients
    in `refuse` get a permanent 550."""

    def __init__(self, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()
        self._condition = threading.Condition()
        self._controller: Controller | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._condition:
            self.messages.append(message)
            self._condition.notify_all()
        return "250 Message accepted for delivery"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> SmtpSink:
        if self._controller is None:
            controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._condition:
            self.messages.clear()

    def received(self, predicate: Callable[[EmailMessage], bool]) -> list[EmailMessage]:
        with self._condition:
            return [m for m in self.messages if predicate(m)]

    def wait_for(self, predicate: Callable[[EmailMessage], bool], *, timeout: float = 10.0) -> EmailMessage:
        """The first message matching `predicate`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching e-mail within {timeout}s; got {len(self.messages)}")
                self._condition.wait(remaining)


def to_address(message: EmailMessage) -> str:
    """The bare address of the message's first `To`."""
    header = message["To"]
    return str(header.addresses[0].addr_spec) if header is not None else ""


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a multipart/alternative message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None, "expected a text part"
    assert html is not None, "expected an HTML part"
    return str(text.get_content()), str(html.get_content())


# --- JWKS for a real process ---------------------------------------------------------------------------


@contextmanager
def jwks_server(jwks: dict[str, Any]) -> Iterator[str]:
    """Serve `jwks` over HTTP on loopback; yields its URL."""
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
