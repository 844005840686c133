"""Prometheus metrics of the documents service (besides the shared HTTP and event ones)."""

from __future__ import annotations

from prometheus_client import Counter

UPLOADS = Counter("mif_documents_uploads_total", "Upload attempts by outcome", ["outcome"])
UPLOADED_BYTES = Counter("mif_documents_uploaded_bytes_total", "Bytes of accepted documents")
DOWNLOADED_BYTES = Counter("mif_documents_downloaded_bytes_total", "Bytes sent by downloads (ranges included)")
FILES_REMOVED = Counter("mif_documents_files_removed_total", "Stored files removed by the cleanup", ["reason"])
