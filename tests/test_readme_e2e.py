"""The README's "first ten minutes" walkthrough, run as written against the running suite."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from mif_auth.testing import PASSWORD
from tests.support import ADMIN_EMAIL, Suite

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[1] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    block = re.search(r"<!-- first-ten-minutes:begin -->\n```sh\n(.*?)```\n<!-- first-ten-minutes:end -->", text, re.S)
    assert block is not None, "README.md lost its first-ten-minutes block (or its markers)"
    return block.group(1)


def json_values(output: str) -> list[dict[str, object]]:
    """Every JSON object jq printed, compact or pretty."""
    decoder, values, at = json.JSONDecoder(), [], 0
    while (at := output.find("{", at)) != -1:
        value, at = decoder.raw_decode(output, at)
        values.append(value)
    return values


def test_the_first_ten_minutes_work_as_written(suite: Suite) -> None:
    # Events reach the other services in well under a second; a loaded CI machine gets more slack.
    script = walkthrough().replace("sleep 1", "sleep 4")
    env = {
        **os.environ,
        "API": f"{suite.url}/api/v1",
        "MIF_ADMIN_EMAIL": ADMIN_EMAIL,
        "MIF_ADMIN_PASSWORD": PASSWORD,
    }
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, f"walkthrough failed:\n{run.stdout}\n{run.stderr}"
    lines = json_values(run.stdout)

    assert {"username": "admin", "role": "admin"} in lines
    assert any(line.get("statut") == "affectee" and line.get("technicien") for line in lines)
    assert any(line.get("type") == "affectation" for line in lines), "karim saw no assignment notification"
    assert {"nom": "Compresseur C-12", "statut": "maintenance"} in lines
    assert any(line.get("statut") == "cloturee" and line.get("date_cloture") for line in lines)
    history = [line for line in lines if "action" in line]
    assert [h["statut"] for h in history][-3:] == ["affectee", "en_cours", "cloturee"]
    assert all(h["user_id"] is not None for h in history)
    [stats] = [line for line in lines if "taux_resolution" in line]
    assert isinstance(stats["interventions"], dict)
