"""The signer of export files' links (`/api/v1/rapports/fichiers/<job id>.<expires>.<signature>`).

The secret is shared by every replica: `MIF_REPORTS_URL_SECRET`, required in production; in development
and tests one is generated once and kept in `<exports_dir>/.url-secret` (mif_common.signed_links).
"""

from __future__ import annotations

from fastapi import FastAPI

from mif_common.signed_links import LinkSigner, load_link_secret
from mif_reports.config import ReportsSettings

CONTEXT = b"mif-reports/fichier/v1:"


def link_signer(settings: ReportsSettings) -> LinkSigner:
    secret = load_link_secret(
        settings.url_secret,
        production=settings.is_production,
        variable="MIF_REPORTS_URL_SECRET",
        directory=settings.exports_dir,
    )
    return LinkSigner(secret, context=CONTEXT)


async def install_link_signer(app: FastAPI) -> None:
    app.state.link_signer = link_signer(app.state.settings)
