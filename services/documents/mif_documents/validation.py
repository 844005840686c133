"""What an uploaded file is (from its bytes, never its name) and what its name may be.

The allow-list (DOMAIN.md §6): PDF, JPEG, PNG, GIF, WebP, plain text, CSV, XLSX, DOCX. Images and
PDF are recognised by their signature; XLSX and DOCX are ZIP containers recognised by their entries
(`[Content_Types].xml` and `xl/` or `word/`); text must be valid UTF-8 without NUL or other binary
control bytes. Anything else (an executable renamed `.pdf`, a plain ZIP, ...) is refused.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
import zipfile
from pathlib import Path
from urllib.parse import quote

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
TEXT = "text/plain"
CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

ALLOWED_TYPES = (PDF, JPEG, PNG, GIF, WEBP, TEXT, CSV, XLSX, DOCX)
ALLOWED_DESCRIPTION = "PDF, JPEG, PNG, GIF, WebP, plain text (UTF-8), CSV, XLSX or DOCX"
# How many leading bytes the signature checks need.
HEAD_BYTES = 16

_CSV_DECLARED = frozenset({"text/csv", "application/csv", "text/comma-separated-values"})
# Bytes that never occur in text: NUL and the C0 controls other than tab, line feed, vertical tab,
# form feed, carriage return and escape; DEL.
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
MAX_FILENAME = 255


class TextProbe:
    """Fed the file as it arrives: whether it is still plausible text (strict UTF-8, no binary bytes)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self.is_text = True

    def feed(self, data: bytes) -> None:
        if not self.is_text:
            return
        if _BINARY_BYTES.search(data):
            self.is_text = False
            return
        try:
            self._decoder.decode(data)
        except UnicodeDecodeError:
            self.is_text = False

    def finish(self) -> bool:
        if self.is_text:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.is_text = False
        return self.is_text


def detect_type(head: bytes, *, path: Path, is_text: bool, filename: str, declared_type: str | None) -> str | None:
    """The MIME type of an uploaded file from its bytes (`head`: its first bytes; `path`: the whole
    file, for the ZIP containers), or None when it is not an allowed type."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"PK\x03\x04"):
        return _office_type(path)
    if is_text:
        declared = (declared_type or "").split(";", 1)[0].strip().lower()
        if filename.lower().endswith(".csv") or declared in _CSV_DECLARED:
            return CSV
        return TEXT
    return None


def _office_type(path: Path) -> str | None:
    """XLSX or DOCX when the ZIP has the Office Open XML entries; None for any other ZIP."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if any(n.startswith("xl/") for n in names):
        return XLSX
    if any(n.startswith("word/") for n in names):
        return DOCX
    return None


def content_type_header(mime: str) -> str:
    """`Content-Type` of a download: text is always served as UTF-8 (that is what was accepted)."""
    return f"{mime}; charset=utf-8" if mime.startswith("text/") else mime


# --- names ------------------------------------------------------------------------------------------

_WHITESPACE_CONTROLS = str.maketrans({c: " " for c in "\t\n\r\x0b\x0c\x85\u2028\u2029"})
# Control, format (bidi overrides that disguise extensions, zero-width characters), surrogate and
# private-use characters never belong in a displayed name.
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co"})


def sanitise_filename(raw: str) -> str:
    """The name to keep for display: its last path component (`/` and `\\` both count), without
    control or format characters, whitespace collapsed, at most 255 characters (the extension kept).
    Empty when nothing usable is left (the caller refuses it). Never used on disk."""
    name = unicodedata.normalize("NFC", raw).translate(_WHITESPACE_CONTROLS)
    name = "".join(c for c in name if unicodedata.category(c) not in _DROPPED_CATEGORIES)
    name = re.split(r"[/\\]", name)[-1]
    name = " ".join(name.split())
    if not name.strip("."):
        return ""
    if len(name) > MAX_FILENAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            name = stem[: MAX_FILENAME - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_FILENAME].rstrip()
    return name


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(c for c in decomposed if ord(c) < 128 and not unicodedata.combining(c))
    safe = re.sub(r"[^A-Za-z0-9._()+ ',&-]", "_", ascii_only)
    safe = re.sub(r"_+", "_", " ".join(safe.split()))
    if not safe.strip("._ "):
        extension = name.rpartition(".")[2] if "." in name else ""
        extension = re.sub(r"[^A-Za-z0-9]", "", extension)[:16]
        return "document" + (f".{extension}" if extension else "")
    return safe


def content_disposition(name: str) -> str:
    """`attachment` with an ASCII fallback name and the original in UTF-8 (RFC 6266 / RFC 8187)."""
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"
