"""The MQTT broker the tests publish to (Mosquitto at 127.0.0.1:1883, started by `.ci/run` and `make run`
when installed): a test that needs it skips on a developer's machine without one, and fails under CI,
where its absence is a broken setup, not a reason to leave a feature untested."""

from __future__ import annotations

import os
import socket

import pytest

MQTT_HOST, MQTT_PORT = "127.0.0.1", 1883


def broker_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((MQTT_HOST, MQTT_PORT)) == 0


def require_broker() -> None:
    """Skip (fail under CI) when no broker answers."""
    if broker_up():
        return
    message = f"no MQTT broker on {MQTT_HOST}:{MQTT_PORT} (install Debian's mosquitto package)"
    if os.environ.get("CI"):
        pytest.fail(message + ": .ci/run starts or installs it")
    pytest.skip(message)
