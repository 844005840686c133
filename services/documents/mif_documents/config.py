"""Settings of the documents service (`MIF_DOCUMENTS_*`, falling back to suite-wide `MIF_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from mif_common.config import ServiceSettings
from mif_common.suite import REPO_ROOT

MIB = 1_048_576
# Room for the multipart framing and the small form fields around the file part: the service's
# body limit sits this much above the upload limit, so that only the upload's own cut-off applies.
FORM_OVERHEAD_BYTES = 64 * 1024


class DocumentsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MIF_DOCUMENTS_", extra="ignore")
    service_name: ClassVar[str] = "documents"

    # Where files live (outside any served folder): `<storage_dir>/ab/cd/<key>`, temporary files in
    # `<storage_dir>/.tmp` (same filesystem, so that the final rename is atomic).
    storage_dir: Path = REPO_ROOT / "var" / "documents"
    # Largest file accepted (DOMAIN.md §6: 10 MB by default); the upload is cut off past it.
    max_upload_bytes: int = Field(default=10 * MIB, ge=1, le=2048 * MIB)

    # Signed download URLs. Without a secret, development and tests generate one and keep it in
    # `<storage_dir>/.url-secret` (shared by every replica on that volume); production refuses to start.
    url_secret: SecretStr | None = None
    url_ttl_seconds: int = Field(default=3600, ge=10, le=7 * 24 * 3600)

    # Encryption at rest (AES-256-GCM): keys as JSON {key_id: base64 of 32 bytes}; new files use the
    # active key, older ones keep the key they were written with (rotation); `reencrypt` migrates them.
    encryption_enabled: bool = False
    encryption_keys: dict[str, SecretStr] = Field(default_factory=dict)
    encryption_key_id: str | None = None

    # Files without a database row (a crash between the write and the commit) are removed once older
    # than this; so are temporary files of interrupted uploads.
    orphan_grace_seconds: int = Field(default=3600, ge=60)
    cleanup_interval_seconds: float = Field(default=600.0, gt=0)
    # Documents of a deleted intervention are soft-deleted at once, their files removed after this.
    deleted_intervention_grace_seconds: int = Field(default=7 * 24 * 3600, ge=0)

    # The interventions service, asked once about an intervention missing from the local replica
    # (`MIF_DOCUMENTS_INTERVENTIONS_URL`, or suite-wide `MIF_INTERVENTIONS_URL`).
    interventions_url: str = "http://127.0.0.1:8003"

    @model_validator(mode="after")
    def _body_limit_above_upload_limit(self) -> DocumentsSettings:
        # The shared body-size middleware must not cut legitimate uploads; the upload's own exact
        # cut-off (at max_upload_bytes of file content) is what refuses a file that is too large.
        self.max_body_bytes = max(self.max_body_bytes, self.max_upload_bytes + FORM_OVERHEAD_BYTES)
        return self
