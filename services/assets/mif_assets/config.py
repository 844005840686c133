"""Settings of the assets service (`MIF_ASSETS_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings


class AssetsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_ASSETS_", extra="ignore")
    service_name: ClassVar[str] = "assets"

    # The MQTT ingestion worker (`python -m mif_assets.mqtt_worker`, docs/assets.md "MQTT ingestion").
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str = ""
    mqtt_password: SecretStr = SecretStr("")
    # With several replicas, `$share/mif-assets/mif/equipements/+/+` shares the messages among them.
    mqtt_topic: str = "mif/equipements/+/+"
    # A fixed identifier and a persistent session: QoS 1 messages published while the worker was away are
    # delivered when it comes back (one replica per identifier).
    mqtt_client_id: str = "mif-assets-ingestion"
    mqtt_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    mqtt_max_backoff_seconds: float = Field(default=30.0, gt=0)
    # Readings kept for a meter while the database is unreachable; older ones are dropped (and counted).
    mqtt_max_buffered: int = Field(default=100_000, ge=1000)
    mqtt_health_host: str = "127.0.0.1"
    mqtt_health_port: int = Field(default=8017, ge=1, le=65535)
