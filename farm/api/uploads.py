"""Request bodies read as a stream, under a size limit, files written straight to storage.

A body whose Content-Length is over the limit is refused before a byte of it is stored;
a body without one is counted as it arrives and refused the moment it passes the
limit; an uploaded image (`source`, `reference`) is refused past the image limit
(FARM_MAX_IMAGE_BYTES), far below the video's. Either way what was written for it is
removed again (HTTP 413, nothing stored). Refusing a body does not stop the client
sending it: what is left of it is read and dropped before the answer (farm.api.drain).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from farm.errors import EXIT_REFUSED, FarmError, InputError

MAX_FIELDS = 100
MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 16
MAX_FILENAME_CHARS = 100
IMAGE_FIELDS = ("source", "reference")

class PayloadTooLarge(Exception):
    """The request body, or one uploaded file of it, is over its limit (HTTP 413)."""

    def __init__(self, limit_bytes: int, what: str = "the request body", setting: str = "") -> None:
        where = f" ({setting})" if setting else ""
        super().__init__(f"{what} is over the limit of {limit_bytes} bytes{where}; nothing was stored")
        self.limit_bytes = limit_bytes


class UnsupportedBody(FarmError):
    """The body is neither of the accepted content types (HTTP 415)."""

    exit_code = EXIT_REFUSED


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives (not Request.stream(), which would hide a client
    that went away as an empty end of the body)."""
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body", False):
            return


@dataclass
class UploadedFile:
    """One file part, written under the upload folder."""

    field: str
    filename: str          # the client's name, made safe
    path: Path
    size: int = 0
    sha256: str = ""


@dataclass
class Form:
    fields: list[tuple[str, str]] = field(default_factory=list)
    files: list[UploadedFile] = field(default_factory=list)


def safe_filename(name: str) -> str:
    """The last path component of a client's file name, reduced to [A-Za-z0-9._-]."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-MAX_FILENAME_CHARS:]
    return base or "upload"


def check_declared_length(request: Request, limit_bytes: int) -> None:
    """Refuse at once a body that says it is bigger than the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise InputError("the Content-Length header is not a number") from None
        if size > limit_bytes:
            raise PayloadTooLarge(limit_bytes)


async def read_limited(request: Request, limit_bytes: int) -> bytes:
    """The whole body (for small JSON bodies), refused past `limit_bytes`."""
    check_declared_length(request, limit_bytes)
    body = bytearray()
    async for chunk in body_chunks(request):
        body += chunk
        if len(body) > limit_bytes:
            raise PayloadTooLarge(limit_bytes)
    return bytes(body)


class _Reader:
    """python-multipart callbacks collecting fields and writing file parts to `folder`."""

    def __init__(self, folder: Path, image_limit_bytes: int | None = None) -> None:
        self.folder = folder
        self.image_limit_bytes = image_limit_bytes
        self.form = Form()
        self.pending: list[tuple[BinaryIO, Any, bytes]] = []   # (file, digest, data) to write
        self.handles: list[BinaryIO] = []
        self.digests: list[tuple[UploadedFile, Any]] = []
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._data = bytearray()
        self._file: UploadedFile | None = None
        self._fh: BinaryIO | None = None
        self._digest: Any = None

    def on_part_begin(self) -> None:
        self._disposition, self._data, self._file, self._fh = b"", bytearray(), None, None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._disposition)
        if b"name" not in params:
            raise InputError("a multipart part has no name (Content-Disposition name=...)")
        self._name = params[b"name"].decode("utf-8", "replace")
        if b"filename" in params:
            if len(self.form.files) >= MAX_FILES:
                raise InputError(f"too many files in the request (at most {MAX_FILES})")
            filename = safe_filename(params[b"filename"].decode("utf-8", "replace"))
            sub = self.folder / str(len(self.form.files))
            sub.mkdir(parents=True, exist_ok=True)
            self._file = UploadedFile(self._name, filename, sub / filename)
            self._fh = open(self._file.path, "xb")  # noqa: SIM115 - closed in finish()
            self.handles.append(self._fh)
            self._digest = hashlib.sha256()
            self.digests.append((self._file, self._digest))
            self.form.files.append(self._file)
        elif len(self.form.fields) >= MAX_FIELDS:
            raise InputError(f"too many form fields in the request (at most {MAX_FIELDS})")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            chunk = bytes(data[start:end])
            self._file.size += len(chunk)
            if (self.image_limit_bytes is not None and self._file.field in IMAGE_FIELDS
                    and self._file.size > self.image_limit_bytes):
                raise PayloadTooLarge(self.image_limit_bytes, f"the uploaded {self._file.field} image "
                                      f"{self._file.filename!r}", "FARM_MAX_IMAGE_BYTES")
            self.pending.append((self._fh, self._digest, chunk))
            return
        self._data += data[start:end]
        if len(self._data) > MAX_FIELD_BYTES:
            raise InputError(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self._file is None:
            try:
                text = self._data.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"form field {self._name!r} is not UTF-8 text") from None
            self.form.fields.append((self._name, text))

    def write_pending(self) -> None:
        """Write the collected file data (called in a worker thread)."""
        for fh, digest, data in self.pending:
            if data:
                fh.write(data)
                digest.update(data)
        self.pending.clear()

    def finish(self) -> None:
        self.write_pending()
        for fh in self.handles:
            fh.close()
        for up, digest in self.digests:
            up.sha256 = digest.hexdigest()


async def read_multipart(request: Request, folder: Path, limit_bytes: int,
                         image_limit_bytes: int | None = None) -> Form:
    """Parse a multipart/form-data body; files go under `folder` (removed again on any error).

    `limit_bytes` bounds the whole body, `image_limit_bytes` each uploaded image."""
    check_declared_length(request, limit_bytes)
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise InputError("the multipart body has no boundary (Content-Type: multipart/form-data; boundary=...)")
    reader = _Reader(folder, image_limit_bytes)
    callbacks = {name: getattr(reader, name) for name in (
        "on_part_begin", "on_part_data", "on_part_end", "on_header_field", "on_header_value",
        "on_header_end", "on_headers_finished")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        async for chunk in body_chunks(request):
            received += len(chunk)
            if received > limit_bytes:
                raise PayloadTooLarge(limit_bytes)
            _feed(parser, chunk)
            if reader.pending:
                await run_in_threadpool(reader.write_pending)
        _feed(parser, None)
        await run_in_threadpool(reader.finish)
    except BaseException:
        reader.pending.clear()
        for fh in reader.handles:
            fh.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return reader.form


def _feed(parser: MultipartParser, chunk: bytes | None) -> None:
    """Write a chunk to the parser (None: the end), its errors turned into InputError."""
    try:
        if chunk is None:
            parser.finalize()
            if parser.state not in (MultipartState.END, MultipartState.BOUNDARY_PADDING):
                raise InputError("the multipart body ended before its closing boundary (an interrupted upload?)")
        else:
            parser.write(chunk)
    except FormParserError as exc:
        raise InputError(f"the multipart body is malformed: {exc}") from None
