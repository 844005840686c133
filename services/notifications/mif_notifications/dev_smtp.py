"""The development SMTP sink `make run` starts (Procfile `smtp`): one line per e-mail received.

aiosmtpd's default handler prints every message whole — headers, both MIME parts, every line — which
under load costs more CPU than sending it and buries the other processes' output in honcho's console.
A developer needs to see that an e-mail went out, to whom, and about what:

    python -u -m aiosmtpd -n -l 127.0.0.1:1025 -c mif_notifications.dev_smtp.OneLine
"""

from __future__ import annotations

import sys
from email.parser import BytesHeaderParser
from email.policy import default
from typing import Any, TextIO

from aiosmtpd.smtp import SMTP, Envelope, Session


class OneLine:
    """Accepts every message and writes `to <- from: subject` for it (headers parsed, body skipped)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content: Any = envelope.original_content or envelope.content or b""
        data = content if isinstance(content, bytes) else str(content).encode()
        headers = BytesHeaderParser(policy=default).parsebytes(data)
        print(
            f"mail to {', '.join(envelope.rcpt_tos)} <- {envelope.mail_from}: {headers['subject'] or '(no subject)'}",
            file=self.out,
            flush=True,
        )
        return "250 Message accepted for delivery"
