"""What the MQTT ingestion worker accepts: topics `mif/equipements/{equipement_id}/{code}` and payloads
(docs/assets.md, "MQTT ingestion"):

- a plain number (`12.5`): one reading at the instant the worker received it;
- a JSON object `{"valeur": 12.5, "horodatage": "2025-01-01T10:00:00Z", "remise_a_zero": false}`
  (`horodatage` optional: reception time; without an offset: UTC; `remise_a_zero` optional);
- a JSON array of such objects (at most 1,000).

Anything else raises `MauvaisMessage`, which the worker counts and logs.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

import orjson
from pydantic import TypeAdapter, ValidationError

from mif_assets.compteurs_schemas import MAX_RELEVES, Valeur
from mif_assets.releves import Lecture
from mif_common.bodies import Strict
from mif_common.datetimes import DateTimeIn
from mif_common.params import MAX_ID

_TOPIC = re.compile(r"^mif/equipements/([1-9][0-9]{0,18})/([a-z0-9_]{1,50})$")
MAX_PAYLOAD_BYTES = 256 * 1024


class MauvaisMessage(ValueError):
    """A topic or payload the worker cannot read; `raison` labels its counter."""

    def __init__(self, raison: str, detail: str) -> None:
        super().__init__(detail)
        self.raison = raison


class ReleveMqtt(Strict):
    valeur: Valeur
    horodatage: DateTimeIn | None = None
    remise_a_zero: bool = False


_ONE = TypeAdapter(ReleveMqtt)
_MANY = TypeAdapter(list[ReleveMqtt])


def parse_topic(topic: str) -> tuple[int, str]:
    """(equipement_id, code) of a reading's topic."""
    match = _TOPIC.match(topic)
    if match is None or int(match.group(1)) > MAX_ID:
        raise MauvaisMessage("topic", f"topic {topic[:200]!r} is not mif/equipements/<id>/<code>")
    return int(match.group(1)), match.group(2)


def parse_payload(payload: bytes, received: datetime) -> list[Lecture]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MauvaisMessage("payload", f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD_BYTES})")
    try:
        text = payload.decode("ascii").strip()
        number = float(text)
    except (UnicodeDecodeError, ValueError):
        pass
    else:
        if not math.isfinite(number) or abs(number) > 1e15:
            raise MauvaisMessage("payload", f"value {text[:50]!r} is not a finite number")
        return [Lecture(received, number)]
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MauvaisMessage("payload", "payload is neither a number nor JSON") from exc
    try:
        if isinstance(document, list):
            if not document or len(document) > MAX_RELEVES:
                raise MauvaisMessage("payload", f"a list of 1 to {MAX_RELEVES} readings is expected")
            releves = _MANY.validate_python(document)
        else:
            releves = [_ONE.validate_python(document)]
    except ValidationError as exc:
        raise MauvaisMessage("payload", f"invalid reading: {exc.errors()[0]['msg']}") from exc
    return [Lecture(r.horodatage or received, r.valeur, r.remise_a_zero) for r in releves]
