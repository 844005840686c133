"""Settings of the gateway (`MIF_GATEWAY_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings
from mif_common.suite import ALL_SERVICES, REPO_ROOT
from mif_gateway.forwarded import parse_networks

JWKS_PATH = "/api/v1/auth/.well-known/jwks.json"

UpstreamClientName = Literal["aiohttp", "httpx2"]


def default_upstreams() -> dict[str, str]:
    """Every service on loopback at its port from `mif_common.suite`."""
    return {s.name: f"http://127.0.0.1:{s.port}" for s in ALL_SERVICES}


class GatewaySettings(ServiceSettings):
    """Upstreams, CORS, timeouts, body limits and rate limits of the gateway."""

    model_config = SettingsConfigDict(env_prefix="MIF_GATEWAY_", extra="ignore")
    service_name: ClassVar[str] = "gateway"

    # Overrides merged over `default_upstreams()`: MIF_GATEWAY_UPSTREAMS='{"auth": "http://auth:8000"}'.
    upstreams: dict[str, str] = Field(default_factory=dict)
    cors_origins: list[str] = Field(
        default_factory=lambda: [
            "http://localhost:3000",
            "http://localhost:5173",
            "http://127.0.0.1:3000",
            "http://127.0.0.1:5173",
        ]
    )

    # Which HTTP client talks to the upstreams (chosen by bench/gateway_overhead.py; see bench/README.md).
    upstream_client: UpstreamClientName = "aiohttp"
    upstream_pool_size: int = Field(default=200, ge=1, le=10_000)
    upstream_connect_timeout: float = Field(default=3.0, gt=0)
    # Idle keep-alive connections are dropped after this; keep it below the services' own keep-alive
    # timeout (uvicorn: 5 s) so the gateway never sends on a connection the service is closing.
    upstream_keepalive_seconds: float = Field(default=4.0, gt=0)
    # Time allowed for an upstream to answer with its status line and headers; past it: 504.
    upstream_timeout: float = Field(default=30.0, gt=0)
    # Longest silence tolerated inside a streamed body (uploads, downloads, the notification stream).
    upstream_stream_idle_timeout: float = Field(default=300.0, gt=0)

    # JSON, form and text bodies are buffered up to this size (larger: 413); other bodies are streamed.
    max_buffered_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Upper bound of a streamed request body announced by Content-Length (services apply their own).
    max_streamed_body_bytes: int = Field(default=100 * 1_048_576, ge=1024)
    # Responses up to this Content-Length are read in one piece; larger or unsized ones are streamed.
    response_buffer_bytes: int = Field(default=262_144, ge=0)

    # Proxies in front of the gateway whose X-Forwarded-For is believed (CIDRs or addresses; none by
    # default: the TCP peer is the client). Set exactly the ingress (mif_gateway/forwarded.py).
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        parse_networks(values)  # a typo is a start-up error, not a silently trusted or ignored proxy
        return values

    # Rate limits, in-memory per replica (auth's database-backed throttling is the cross-replica guard).
    rate_limit_enabled: bool = True
    rate_window_seconds: float = Field(default=60.0, gt=0)
    rate_user_per_window: int = Field(default=1200, ge=1)
    rate_anonymous_per_window: int = Field(default=300, ge=1)
    login_window_seconds: float = Field(default=300.0, gt=0)
    # Failed sign-ins (auth answered 401) per address, and per account FROM ONE ADDRESS, within the window
    # (failures from elsewhere never refuse an account's owner); successes do not count, so many people
    # behind one address (a factory's NAT at shift start) are never refused.
    login_per_ip: int = Field(default=30, ge=1)
    login_per_account: int = Field(default=10, ge=1)
    # Every sign-in attempt per address, successes included: only a ceiling on the hashing work.
    login_attempts_per_ip: int = Field(default=600, ge=1)
    rate_max_keys: int = Field(default=100_000, ge=100)

    # Revocation: `revocation_enabled` and `token_states_retry_seconds` come from ServiceSettings (the same
    # token-state check as every service's, mif_common.auth.token_state).
    # Verified tokens are remembered this long (never past their expiry) to skip re-verifying signatures.
    token_cache_seconds: float = Field(default=30.0, ge=0)
    token_cache_size: int = Field(default=10_000, ge=0)

    openapi_cache_seconds: float = Field(default=30.0, ge=0)
    # The generated event catalogue served at /asyncapi.json and /docs/events (`make catalogue` writes it;
    # the image has it at the same place, the source tree being /app).
    asyncapi_path: Path = REPO_ROOT / "docs" / "events" / "asyncapi.json"
    control_timeout: float = Field(default=3.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _jwks_from_auth_upstream(cls, data: Any) -> Any:
        """Read the JWKS from the auth upstream unless a JWKS URL is given explicitly."""
        if not isinstance(data, dict) or data.get("jwks_url"):
            return data
        upstreams = data.get("upstreams")
        if isinstance(upstreams, str):
            try:
                upstreams = json.loads(upstreams)
            except ValueError:
                return data
        auth = upstreams.get("auth") if isinstance(upstreams, dict) else None
        if not auth:
            auth = data.get("auth_url")
        if auth:
            return {**data, "jwks_url": f"{str(auth).rstrip('/')}{JWKS_PATH}"}
        return data

    @model_validator(mode="after")
    def _known_services(self) -> GatewaySettings:
        known = {s.name for s in ALL_SERVICES}
        unknown = sorted(set(self.upstreams) - known)
        if unknown:
            raise ValueError(f"unknown services in upstreams: {', '.join(unknown)}")
        return self

    def upstream_urls(self) -> dict[str, str]:
        """Base URL of every service (defaults, then `auth_url`, then explicit overrides)."""
        urls = default_upstreams()
        if "auth_url" in self.model_fields_set:
            urls["auth"] = self.auth_url
        urls.update(self.upstreams)
        return {name: url.rstrip("/") for name, url in urls.items()}
