"""Receiving an upload: `multipart/form-data` parsed incrementally from the request stream.

The `file` part goes straight to a staged object in storage, hashed (SHA-256) and counted as it
arrives; past the size limit the upload is cut off at once (the rest of the body is never read) and
the staged bytes are deleted. Nothing of the file is held in memory beyond one write buffer. The
small parts (`categorie`, `description`) are kept in memory, each bounded. After the last byte, the
type is detected from the bytes against the allow-list and the original name is sanitised.

Each refusal is a clear 4xx: 400 malformed body, 413 too large, 415 not multipart or not an allowed
type, 422 missing/empty file or unusable name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from mif_common.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from mif_documents.storage import StagedFile, Storage
from mif_documents.validation import (
    ALLOWED_DESCRIPTION,
    ALLOWED_TYPES,
    HEAD_BYTES,
    TextProbe,
    detect_type,
    sanitise_filename,
)

FILE_FIELD = "file"
MAX_FIELD_BYTES = 8 * 1024  # a form field other than the file (categorie, description)
MAX_PARTS = 16


class UploadTooLarge(PayloadTooLarge):
    slug = "file-too-large"


class TypeRefuse(UnsupportedMediaType):
    slug = "file-type-not-allowed"


class MultipartRequired(UnsupportedMediaType):
    slug = "multipart-required"


class UploadMalformed(BadRequest):
    slug = "malformed-multipart"


class UploadInvalid(Unprocessable):
    slug = "invalid-upload"


def human_size(size: int) -> str:
    if size >= 1_048_576 and size % 1_048_576 == 0:
        return f"{size // 1_048_576} MB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} bytes"


@dataclass
class ReceivedUpload:
    """A received, validated file, still staged (not yet a stored object) plus the form fields."""

    staged: StagedFile
    filename: str
    mime: str
    fields: dict[str, str]

    @property
    def size(self) -> int:
        return self.staged.size

    @property
    def sha256(self) -> str:
        return self.staged.sha256


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None  # raw, as sent
    content_type: str | None = None
    is_file: bool = False
    value: bytearray = field(default_factory=bytearray)


@dataclass
class _Event:
    kind: str  # "data" | "end"
    part: _Part
    data: bytes = b""


class _Collector:
    """python-multipart callbacks (synchronous): headers parsed here, data and part ends queued for
    the asynchronous writer."""

    def __init__(self) -> None:
        self.events: list[_Event] = []
        self.part: _Part | None = None
        self.parts = 0
        self.finished = False
        self._field = bytearray()
        self._value = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadMalformed(f"The form has more than {MAX_PARTS} parts.")
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        assert self.part is not None
        self.part.headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        part = self.part
        assert part is not None
        disposition, options = parse_options_header(part.headers.get("content-disposition", ""))
        if disposition != b"form-data" or b"name" not in options:
            raise UploadMalformed("Each part of the form needs a Content-Disposition: form-data with a name.")
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            # Browsers send the name as raw UTF-8 bytes; the header was decoded as latin-1.
            part.filename = options[b"filename"].decode("utf-8", "replace")
        part.content_type = part.headers.get("content-type")
        part.is_file = part.name == FILE_FIELD

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        assert self.part is not None
        if end > start:
            self.events.append(_Event("data", self.part, data[start:end]))

    def on_part_end(self) -> None:
        assert self.part is not None
        self.events.append(_Event("end", self.part))
        self.part = None

    def on_end(self) -> None:
        self.finished = True


def multipart_boundary(content_type: str | None) -> bytes:
    """The boundary of a `multipart/form-data` body; 415 for any other body."""
    media, options = parse_options_header(content_type or "")
    if media != b"multipart/form-data":
        raise MultipartRequired(
            "Send the file as multipart/form-data, in a part named 'file' (optional parts: 'categorie', 'description')."
        )
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 200:
        raise UploadMalformed("The multipart/form-data Content-Type has no usable boundary.")
    return boundary


async def receive_upload(
    body: AsyncIterator[bytes], *, content_type: str | None, storage: Storage, max_bytes: int
) -> ReceivedUpload:
    """Parse the body as it streams in; the file part is staged in `storage`. Raises a 4xx
    DomainError (the staged bytes deleted) when the upload is refused."""
    boundary = multipart_boundary(content_type)
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    staged: StagedFile | None = None
    file_part: _Part | None = None
    file_done = False
    head = bytearray()
    probe = TextProbe()
    fields: dict[str, str] = {}
    try:
        async for chunk in body:
            if collector.finished:
                continue  # an epilogue after the closing boundary is ignored
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise UploadMalformed("The multipart body is malformed.") from exc
            events, collector.events = collector.events, []
            for event in events:
                part = event.part
                if not part.is_file:
                    if event.kind == "data":
                        part.value += event.data
                        if len(part.value) > MAX_FIELD_BYTES:
                            raise UploadTooLarge(
                                f"The form field '{part.name}' is longer than {human_size(MAX_FIELD_BYTES)}."
                            )
                    elif part.name is not None:
                        fields[part.name] = part.value.decode("utf-8", "replace")
                    continue
                if file_part is not None and part is not file_part:
                    raise UploadInvalid(
                        "Send exactly one part named 'file'.",
                        errors=[{"field": FILE_FIELD, "message": "more than one file part"}],
                    )
                file_part = part
                if staged is None:
                    staged = await storage.stage()
                if event.kind == "end":
                    file_done = True
                    continue
                if staged.size + len(event.data) > max_bytes:
                    raise UploadTooLarge(
                        f"The file is larger than the {human_size(max_bytes)} allowed; nothing was stored.",
                        limit=max_bytes,
                    )
                if len(head) < HEAD_BYTES:
                    head += event.data[: HEAD_BYTES - len(head)]
                probe.feed(event.data)
                await staged.write(event.data)
        if not collector.finished:
            raise UploadMalformed("The multipart body ended before its closing boundary (incomplete upload).")
        if file_part is None or staged is None or not file_done:
            raise UploadInvalid(
                "The form has no part named 'file'; send the document in a part named 'file'.",
                errors=[{"field": FILE_FIELD, "message": "required"}],
            )
        if staged.size == 0:
            raise UploadInvalid(
                "The file is empty (0 bytes); nothing was stored.",
                errors=[{"field": FILE_FIELD, "message": "empty file"}],
            )
        filename = sanitise_filename(file_part.filename or "")
        if not filename:
            raise UploadInvalid(
                "The file part needs a file name with at least one usable character (a name made only of "
                "path separators, dots or control characters is refused).",
                errors=[{"field": FILE_FIELD, "message": "missing or unusable file name"}],
            )
        await staged.finish()
        mime = detect_type(
            bytes(head),
            path=staged.path,
            is_text=probe.finish(),
            filename=filename,
            declared_type=file_part.content_type,
        )
        if mime is None:
            raise TypeRefuse(
                f"The content of '{filename}' is not an allowed type (the type is read from the bytes, not the "
                f"name). Allowed: {ALLOWED_DESCRIPTION}.",
                allowed=list(ALLOWED_TYPES),
            )
        return ReceivedUpload(staged=staged, filename=filename, mime=mime, fields=fields)
    except BaseException:
        if staged is not None:
            await staged.discard()
        raise
