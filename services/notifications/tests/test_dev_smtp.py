"""The development SMTP sink: one line per e-mail, through a real SMTP conversation."""

from __future__ import annotations

import io
import smtplib
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from mif_common.testing.processes import free_port
from mif_notifications.dev_smtp import OneLine

REPO = Path(__file__).resolve().parents[3]


def test_each_email_is_one_line_saying_to_whom_from_whom_and_about_what() -> None:
    out = io.StringIO()
    controller = Controller(OneLine(out), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        message = EmailMessage()
        message["From"] = "no-reply@mif.ma"
        message["To"] = "tech@mif.ma"
        message["Subject"] = "Intervention #42 affectée"
        message.set_content("Bonjour,\nune longue description.\n" * 50)
        message.add_alternative("<p>Bonjour</p>" * 50, subtype="html")
        with smtplib.SMTP("127.0.0.1", controller.port) as client:
            client.send_message(message)
            client.send_message(message, to_addrs=["a@mif.ma", "b@mif.ma"])
    finally:
        controller.stop()
    assert out.getvalue().splitlines() == [
        "mail to tech@mif.ma <- no-reply@mif.ma: Intervention #42 affectée",
        "mail to a@mif.ma, b@mif.ma <- no-reply@mif.ma: Intervention #42 affectée",
    ]


def test_make_run_starts_this_sink() -> None:
    [smtp] = [line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("smtp:")]
    assert "-c mif_notifications.dev_smtp.OneLine" in smtp
