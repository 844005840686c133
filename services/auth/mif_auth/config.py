"""Settings of the auth service (`MIF_AUTH_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from mif_auth.passwords import PasswordHashing, Scheme
from mif_common.config import ServiceSettings
from mif_common.suite import REPO_ROOT


class AuthSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_AUTH_", extra="ignore")
    service_name: ClassVar[str] = "auth"

    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_ttl_days: int = Field(default=14, ge=1, le=90)
    # Password hashing (docs/auth.md, "Password hashing"). New hashes: argon2id at OWASP's m=19 MiB, t=2,
    # p=1 (about 20 ms here), or bcrypt at `bcrypt_rounds` with `password_scheme=bcrypt`. Older hashes keep
    # verifying and are re-hashed with these at the account's next successful sign-in. Production refuses
    # parameters below OWASP's guidance; tests make hashing cheap (argon2 memory 1024, time cost 1).
    # The bounds keep an argon2 hash within the 100 characters of `user.password_hash`.
    password_scheme: Scheme = "argon2id"
    argon2_memory_kib: int = Field(default=19_456, ge=1024, le=262_144)
    argon2_time_cost: int = Field(default=2, ge=1, le=10)
    argon2_parallelism: int = Field(default=1, ge=1, le=4)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # PEM private key (Ed25519 or RSA) that signs tokens; earlier keys stay published for verification.
    signing_key_file: Path | None = None
    previous_key_files: list[Path] = Field(default_factory=list)
    # Development only: where a generated key is persisted when no key file is configured.
    key_dir: Path = REPO_ROOT / "var" / "auth-keys"
    # Sign-in throttling (docs/auth.md, "Sign-in throttling"): failed sign-ins count within the window.
    login_window_seconds: int = Field(default=900, ge=10)
    # Failures on one account FROM ONE ADDRESS before that address is refused for that account (429 until
    # the oldest of them leaves the window); other addresses are not affected. (The name predates the
    # per-address counting; it is kept so existing configurations keep their meaning of "guesses".)
    login_max_failures_per_account: int = Field(default=5, ge=1)
    # Failures from one address, whatever the accounts (password spraying): that address is refused.
    login_max_failures_per_ip: int = Field(default=30, ge=1)
    # Failures on one account from every address before each further attempt on it waits: the n-th
    # failure past this many makes the next attempt wait base · 2^n seconds after it, at most max.
    login_delay_after_failures: int = Field(default=10, ge=1)
    login_delay_base_seconds: int = Field(default=1, ge=1)
    login_delay_max_seconds: int = Field(default=30, ge=1, le=300)
    # An address the account signed in from within these days is not slowed by failures from elsewhere
    # (0: no address is). Its own failures still lock it out after login_max_failures_per_account.
    login_known_address_days: int = Field(default=30, ge=0)
    # Failures on one account within the window that tell its owner (in-app and e-mail), once per window.
    login_alert_after_failures: int = Field(default=5, ge=1)
    # The assets service, asked about a client organisation missing from the local replica
    # (`MIF_AUTH_ASSETS_URL`, or suite-wide `MIF_ASSETS_URL`).
    assets_url: str = "http://127.0.0.1:8002"

    @property
    def password_hashing(self) -> PasswordHashing:
        return PasswordHashing(
            scheme=self.password_scheme,
            argon2_memory_kib=self.argon2_memory_kib,
            argon2_time_cost=self.argon2_time_cost,
            argon2_parallelism=self.argon2_parallelism,
            bcrypt_rounds=self.bcrypt_rounds,
        )

    @model_validator(mode="after")
    def _owasp_in_production(self) -> AuthSettings:
        if self.is_production and not self.password_hashing.meets_owasp():
            raise ValueError(
                f"password hashing ({self.password_hashing.describe()}) is below OWASP's guidance: use argon2id "
                "with m=19456 KiB t=2 p=1 (or m=47104 t=1, m=12288 t=3, m=9216 t=4, m=7168 t=5) or bcrypt cost 10+"
            )
        return self
