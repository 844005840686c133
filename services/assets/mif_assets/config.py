"""Settings of the assets service (`MIF_ASSETS_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings


class AssetsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_ASSETS_", extra="ignore")
    service_name: ClassVar[str] = "assets"
