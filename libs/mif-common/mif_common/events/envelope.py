"""CloudEvents 1.0 envelope and the base class of every event payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EventPayload(BaseModel):
    """A published fact. Subclasses set `event_type` (`<service>.<entity>.<verb>.v<N>`).

    Payloads only gain optional fields within a version, so consumers ignore unknown ones.
    """

    model_config = ConfigDict(extra="ignore")
    event_type: ClassVar[str]


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str
    type: str
    subject: str | None = None
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(default_factory=dict)
    correlationid: str | None = None
    causationid: str | None = None
