"""Settings shared by every service, read from the environment.

Each service subclasses `ServiceSettings` with its own prefix (`MIF_AUTH_`, ...). A variable with the
service prefix wins over the suite-wide `MIF_` one, so `MIF_AMQP_URL` configures every service and
`MIF_AUTH_AMQP_URL` only auth.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

Environment = Literal["development", "test", "production"]

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "dev-secret"})


class ServiceSettings(BaseSettings):
    """Base settings; subclasses set `service_name` and `model_config(env_prefix=...)`."""

    model_config = SettingsConfigDict(env_prefix="MIF_", extra="ignore")
    service_name: ClassVar[str] = ""
    # Connections the process holds outside its pool, straight to PostgreSQL, for LISTEN: the outbox
    # relay's (notifications adds its live stream's).
    listen_connections: ClassVar[int] = 1

    environment: Environment = "development"
    database_url: str = ""
    # Database connections of one process (deploy/k8s/README.md, "Database connections"): its pool holds
    # `db_pool_size` connections and opens up to `db_max_overflow` more under load (requests, consumers,
    # the relay's batches, AUTOCOMMIT reads share it); beside it, `listen_connections` for LISTEN. At the
    # defaults the eight services open at most 49 together (libs/mif-common/tests/test_db_connections.py), well
    # under PostgreSQL's default max_connections of 100. No overflow by default: at c=10 an overflow
    # connection is opened and closed again and again (measured in bench/lists.py); a request rather
    # waits a moment for one of the pool's.
    db_pool_size: int = Field(default=5, ge=1, le=200)
    db_max_overflow: int = Field(default=0, ge=0, le=200)
    # `database_url` goes through PgBouncer in transaction mode: statement caches off, search_path from the
    # role (mif_common.db.make_engine). LISTEN/NOTIFY cannot go through it: `direct_database_url` is then
    # required, straight to PostgreSQL (empty otherwise: `database_url` itself).
    db_pgbouncer: bool = False
    direct_database_url: str = ""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    auth_url: str = "http://127.0.0.1:8001"
    jwks_url: str = ""
    jwt_issuer: str = "mif-auth"
    jwt_audience: str = "mif-api"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["EdDSA", "RS256"])
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=300)
    # Token states (mif_common.auth.token_state): every authenticated request is checked against the
    # user's {active, token version}, kept from auth's snapshot and `auth.user.*` events. Off only in
    # tests whose tokens name users no auth knows.
    revocation_enabled: bool = True
    token_states_retry_seconds: float = Field(default=2.0, gt=0)
    # Largest request body a service accepts (documents raises it for uploads).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # A request body that stops arriving is answered 408 (mif_common.guard): after this long without a
    # byte, or once the whole body has taken `body_deadline_seconds` (uploads included).
    body_timeout_seconds: float = Field(default=30.0, gt=0)
    body_deadline_seconds: float = Field(default=600.0, gt=0)
    # JSON bodies nested deeper than this are refused (400) before any parser recurses into them.
    max_json_depth: int = Field(default=64, ge=2, le=512)
    log_level: str = "INFO"
    log_json: bool = True
    # Background work (outbox relay, consumers, schedulers). Tests switch it off and drive it by hand.
    background_tasks: bool = True
    outbox_poll_interval: float = Field(default=2.0, gt=0)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
    outbox_publish_timeout: float = Field(default=5.0, gt=0)
    outbox_max_backoff: float = Field(default=60.0, gt=0)
    # Messages delivered unacknowledged at once: also the largest batch handled in one transaction.
    consumer_prefetch: int = Field(default=50, ge=1, le=1000)
    # How long the first message of a batch waits for others (mif_common.events.consumer).
    consumer_batch_linger_seconds: float = Field(default=0.01, ge=0, le=1)
    consumer_attempts: int = Field(default=3, ge=1, le=20)
    consumer_delivery_limit: int = Field(default=5, ge=1, le=100)
    # A handler that still fails after `consumer_attempts` (an event that arrived before what it refers
    # to, an owner briefly down) is retried later, after each of these delays in turn (the last one
    # repeating), and dead-lettered only once it has failed for `consumer_dead_letter_after_seconds`.
    consumer_retry_delays_seconds: list[Annotated[float, Field(gt=0, le=86_400)]] = Field(
        default_factory=lambda: [5.0, 30.0, 120.0, 300.0], max_length=10
    )
    consumer_dead_letter_after_seconds: float = Field(default=900.0, ge=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        suite_wide = EnvSettingsSource(settings_cls, env_prefix="MIF_")
        return init_settings, env_settings, suite_wide, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _defaults_from_service_name(self) -> ServiceSettings:
        name = self.service_name or "mif"
        if not self.database_url:
            self.database_url = f"postgresql+asyncpg://mif_{name}@127.0.0.1:5432/mif"
        if not self.direct_database_url:
            if self.db_pgbouncer:
                raise ValueError(
                    "behind PgBouncer (db_pgbouncer) the direct_database_url (MIF_<SVC>_DIRECT_DATABASE_URL, straight "
                    "to PostgreSQL) is required: LISTEN/NOTIFY does not work through transaction pooling"
                )
            self.direct_database_url = self.database_url
        if not self.jwks_url:
            self.jwks_url = f"{self.auth_url.rstrip('/')}/api/v1/auth/.well-known/jwks.json"
        return self

    @property
    def db_schema(self) -> str:
        return self.service_name

    @property
    def max_db_connections(self) -> int:
        """The most connections this process opens to the database URL and the direct one together."""
        return self.db_pool_size + self.db_max_overflow + self.listen_connections

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def require_real_secret(self, name: str, value: SecretStr | None) -> None:
        """Refuse a missing or placeholder secret outside development and tests."""
        if self.is_production and (value is None or value.get_secret_value() in PLACEHOLDER_SECRETS):
            raise ValueError(f"{name} must be set to a real secret in production")
