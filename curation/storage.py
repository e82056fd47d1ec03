"""One file API for local paths and s3:// URIs: glob, streaming (decompressing) reads, stat, atomic writes.

Kept to what the pipeline needs, in the spirit of fsspec/smart_open but on plain boto3: S3 reads stream the
object body, S3 writes are multipart uploads completed only on success so no half object ever appears.
"""

from __future__ import annotations

import bz2
import collections
import contextlib
import fcntl
import gzip
import hashlib
import io
import lzma
import os
import random
import re
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from stat import S_ISREG
from typing import Any, BinaryIO

import zstandard

from curation.errors import InputError

S3_SCHEME = "s3://"
DEFAULT_PART_SIZE_BYTES = 64 * 1024 * 1024
# Attempts per S3 request, and per stalled read, unless AWS_MAX_ATTEMPTS says otherwise (botocore's is 3): a
# long run meets SlowDown bursts and dropped connections that three quick tries do not outlast.
DEFAULT_S3_MAX_ATTEMPTS = 10
_READ_CHUNK_BYTES = 1024 * 1024
_GLOB_CHARS = re.compile(r"[*?\[]")
# What open_decompressed decodes, by file extension; each one streams in bounded memory, even a bomb.
CODECS = ("gz", "zst", "bz2", "xz")

# What a decompressing stream raises on corrupt or truncated input (gzip's BadGzipFile is an OSError).
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    OSError,
    zlib.error,
    zstandard.ZstdError,
    lzma.LZMAError,
)


class UnreadableFile(InputError):
    """An input file that exists but cannot be opened (permission denied, an I/O error). Unlike a missing
    file, which stops a run, it is one quarantine row under `on_error: quarantine`."""


# Beam's own S3 pipeline options (`--s3_endpoint_url`, ...: apache_beam's S3Options) and the boto3 client
# arguments they stand for, as Beam's S3 filesystem passes them on.
_S3_OPTION_CLIENT_ARGS = {
    "s3_endpoint_url": "endpoint_url",
    "s3_region_name": "region_name",
    "s3_access_key_id": "aws_access_key_id",
    "s3_secret_access_key": "aws_secret_access_key",
    "s3_session_token": "aws_session_token",
    "s3_api_version": "api_version",
    "s3_verify": "verify",
}

_s3_settings: dict[str, Any] = {}
_s3_clients: dict[tuple[tuple[str, Any], ...], Any] = {}


@dataclass(frozen=True)
class FileStat:
    uri: str
    size: int
    etag: str | None


def s3_client_settings(options: Mapping[str, Any]) -> dict[str, Any]:
    """boto3 client arguments from Beam's S3 pipeline options, those given only."""
    settings = {
        arg: options[name] for name, arg in _S3_OPTION_CLIENT_ARGS.items() if options.get(name) is not None
    }
    if options.get("s3_disable_ssl"):
        settings["use_ssl"] = False
    return settings


def configure_s3(endpoint_url: str | None = None, **client_kwargs: Any) -> None:
    """Set the S3 endpoint and boto3 client options for this process, over those from the environment and
    the pipeline options; the `curation` command sets them from its command line's S3 options."""
    _s3_settings.clear()
    _s3_settings.update(client_kwargs)
    if endpoint_url is not None:
        _s3_settings["endpoint_url"] = endpoint_url
    # A fresh client also picks up credentials changed in the environment since.
    _s3_clients.clear()


def _worker_pipeline_options() -> Mapping[str, Any]:
    """The options of the Beam pipeline this process is an SDK worker of, on any runner: Beam hands each
    worker its pipeline's options and keeps them where runtime ValueProviders read them (empty in a driver).
    A process that has not imported Beam is no worker, and importing Beam here would cost each command a
    second."""
    value_provider = sys.modules.get("apache_beam.options.value_provider")
    return (value_provider.RuntimeValueProvider.runtime_options if value_provider else None) or {}


# Requests this process has sent to S3, by operation (GetObject, PutObject, ...): what tests and benchmarks
# read to bound the requests a phase makes. Inside a Beam pipeline each request also counts in the metric
# S3_REQUESTS_METRIC of the step that sent it, which the runner sums over every worker process.
S3_REQUESTS: collections.Counter[str] = collections.Counter()
S3_REQUESTS_METRIC = "s3_requests"


def _count_request(operation_name: str, **_: Any) -> None:
    S3_REQUESTS[operation_name] += 1
    # Outside a running step (a driver, a command) the metric counts nothing; Beam is never imported here.
    metrics = sys.modules.get("apache_beam.metrics")
    if metrics is not None:
        metrics.Metrics.counter(S3_REQUESTS_METRIC, operation_name).inc()


def _s3() -> Any:
    """The client for this process's S3 settings: `CURATION_S3_ENDPOINT_URL`, then the S3 options of the
    pipeline this process works for, then `configure_s3`. What none gives, boto3 looks up itself (AWS_*
    variables, config files, instance roles)."""
    settings = s3_client_settings(_worker_pipeline_options())
    env_endpoint = os.environ.get("CURATION_S3_ENDPOINT_URL")
    if env_endpoint:
        settings.setdefault("endpoint_url", env_endpoint)
    settings.update(_s3_settings)
    key = tuple(sorted(settings.items()))
    if key not in _s3_clients:
        import boto3

        client = boto3.client("s3", config=_retry_config(), **settings)
        # Once per HTTP request sent, retries included.
        client.meta.events.register("request-created.s3", _count_request)
        _s3_clients[key] = client
    return _s3_clients[key]


def _retry_config() -> Any:
    """botocore's standard retry mode (SlowDown, 5xx, throttling, connection errors, with backoff) and
    DEFAULT_S3_MAX_ATTEMPTS, unless AWS_RETRY_MODE / AWS_MAX_ATTEMPTS (or the AWS config file) say otherwise;
    only "legacy", botocore's own default, gives way to standard. Resumed body reads use the same attempts."""
    import botocore.session
    from botocore.config import Config

    aws_config = botocore.session.get_session()
    mode = aws_config.get_config_variable("retry_mode")
    attempts = aws_config.get_config_variable("max_attempts") or DEFAULT_S3_MAX_ATTEMPTS
    return Config(retries={"mode": "standard" if mode == "legacy" else mode, "total_max_attempts": attempts})


def is_s3(uri: str) -> bool:
    return uri.startswith(S3_SCHEME)


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len(S3_SCHEME) :].partition("/")
    if not bucket:
        raise InputError(f"{uri}: an S3 URI is s3://bucket/key")
    return bucket, key


def join(base: str, *parts: str) -> str:
    if is_s3(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)


def _s3_error(uri: str, exc: Exception) -> InputError:
    return InputError(f"{uri}: cannot read S3 object ({_error_code(exc)})")


# --- listing -----------------------------------------------------------------------------------------


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """The one glob matcher, for local paths and S3 keys alike, with Python glob's rules: `*`, `?` and `[...]`
    (`[!...]` negated) stay inside one path segment, a `**` segment crosses any number of them (`a/**/b` also
    matches `a/b`), and a wildcard does not match the leading dot of a hidden name."""
    segments = pattern.split("/")
    parts = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            parts.append(_ANY_NAMES if last else _ANY_FOLDERS)
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    try:
        return re.compile("".join(parts) + r"\Z", re.DOTALL)
    except re.error as exc:  # a reversed range such as `[z-a]`
        raise InputError(f"{pattern}: not a valid glob ({exc})") from None


# A visible name, and what a `**` segment matches: any visible folders, or (last) any visible names below.
_NAME = r"(?!\.)[^/]+"
_ANY_FOLDERS = rf"(?:{_NAME}/)*"
_ANY_NAMES = rf"{_ANY_FOLDERS}{_NAME}"


def _segment_regex(segment: str) -> str:
    # A wildcard at the start would otherwise match a hidden name's leading dot.
    out = [r"(?!\.)"] if segment[:1] in ("*", "?", "[") else []
    i = 0
    while i < len(segment):
        char = segment[i]
        end = _class_end(segment, i) if char == "[" else -1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif end > 0:
            out.append(_class_regex(segment[i + 1 : end]))
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal, as in glob)."""
    j = start + 1
    if segment[j : j + 1] == "!":
        j += 1
    if segment[j : j + 1] == "]":  # a `]` first in the class is one of its characters
        j += 1
    return segment.find("]", j)


def _class_regex(body: str) -> str:
    negated = body.startswith("!")
    body = body[1:] if negated else body
    items, k = [], 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            items.append(f"{re.escape(body[k])}-{re.escape(body[k + 2])}")
            k += 3
        else:
            items.append(re.escape(body[k]))
            k += 1
    # A class never matches the separator, even negated or through a range such as `[+-0]`.
    return f"(?!/)[{'^' if negated else ''}{''.join(items)}]"


def list_files(pattern: str) -> list[str]:
    """Files matching a glob, sorted, following every symlink; a pattern that matches nothing is an
    InputError."""
    return list_inputs(pattern, follow_symlinks=True).files


@dataclass(frozen=True)
class InputListing:
    files: list[str]
    # Symlinked files and folders left out because their target lies outside the glob's literal folder.
    outside_links: list[str]


def list_inputs(pattern: str, *, follow_symlinks: bool) -> InputListing:
    """A source's files matching a glob, sorted. Unless `follow_symlinks`, a symlink met below the pattern's
    literal folder whose target lies outside that folder is skipped and listed in `outside_links`. A path
    with no wildcard names its file outright, so it is read even as such a link. A pattern that matches
    nothing is an InputError."""
    if is_s3(pattern):
        listing = InputListing(_list_s3(pattern), [])
    else:
        listing = _list_local(pattern, follow_symlinks)
    if not listing.files:
        raise InputError(f"{pattern}: no input file matches this path")
    return listing


def _list_local(pattern: str, follow_symlinks: bool) -> InputListing:
    """Files under the pattern's literal folder that `glob_to_regex` matches, as S3 keys are matched."""
    first_glob = _GLOB_CHARS.search(pattern)
    if not first_glob:
        return InputListing([pattern] if os.path.isfile(pattern) else [], [])
    regex = glob_to_regex(pattern)
    # The literal folder before the first wildcard, kept as written so matches read like the pattern.
    folder = pattern[: pattern.rfind("/", 0, first_glob.start()) + 1]
    root = os.path.realpath(folder or ".")
    # Without `**`, nothing deeper than the pattern's own segments can match.
    max_depth = None if "**" in pattern.split("/") else pattern[len(folder) :].count("/")
    found, outside = [], []
    for dirpath, dirnames, filenames in os.walk(folder or ".", followlinks=True):
        relative = os.path.relpath(dirpath, folder or ".")
        prefix = folder if relative == "." else f"{folder}{relative}/"
        if max_depth is not None and prefix.count("/") - folder.count("/") >= max_depth:
            dirnames.clear()
        matches = [prefix + name for name in filenames if regex.match(prefix + name)]
        if not follow_symlinks:
            outside += _drop_outside_links(dirpath, dirnames, root, prefix)
            leaving = [path for path in matches if _leaves(path, root)]
            outside += leaving
            matches = [path for path in matches if path not in leaving]
        found += matches
    return InputListing(sorted(found), sorted(outside))


def _drop_outside_links(dirpath: str, dirnames: list[str], root: str, prefix: str) -> list[str]:
    """Removes from the walk's `dirnames` the folders that lead outside `root`; their paths, as listed."""
    leaving = [name for name in dirnames if _leaves(os.path.join(dirpath, name), root)]
    dirnames[:] = [name for name in dirnames if name not in leaving]
    return [prefix + name for name in leaving]


def _leaves(path: str, root: str) -> bool:
    """A symlink whose target lies outside `root` (a real, resolved folder)."""
    return os.path.islink(path) and os.path.commonpath([root, os.path.realpath(path)]) != root


def _list_s3(pattern: str) -> list[str]:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key_pattern = split_s3(pattern)
    first_glob = _GLOB_CHARS.search(key_pattern)
    prefix = key_pattern[: first_glob.start()] if first_glob else key_pattern
    regex = glob_to_regex(key_pattern)
    keys = []
    try:
        for page in _s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(o["Key"] for o in page.get("Contents", []) if regex.match(o["Key"]))
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(pattern, exc) from None
    return sorted(f"{S3_SCHEME}{bucket}/{k}" for k in keys)


# --- reading -----------------------------------------------------------------------------------------


class _S3ObjectReader(io.RawIOBase):
    """An S3 object as a raw stream that outlasts a flaky network, from byte `start`.

    A body cut off mid-way (a dropped connection, a timeout) or ending before its range does is resumed by
    a ranged GET from the last byte received, up to the client's max attempts in a row, with exponential
    backoff and full jitter (the delay only: the bytes never depend on it). Every GET after the first asks
    If-Match the ETag first read, so an object replaced mid-read fails in one line instead of mixing the bytes
    of two versions. Streamed (not `seekable`), one open-ended GET serves the whole read; seekable, each read
    is a GET of the range asked for (Parquet reads its footer, then column chunks).
    """

    def __init__(
        self,
        uri: str,
        *,
        start: int = 0,
        size: int | None = None,
        etag: str | None = None,
        seekable: bool = False,
    ):
        self.uri, self.size, self.etag = uri, size, etag
        self._bucket, self._key = split_s3(uri)
        self._pos = start
        self._seekable = seekable
        self._body: Any = None
        self._body_end = 0
        self._attempts = _s3().meta.config.retries["total_max_attempts"]
        self._jitter = random.Random()
        if size is None:
            # The first GET learns the size and ETag, and a missing object fails at open, as a file does.
            self._retrying(lambda: self._open(None))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        position = max(0, base + offset)
        if position != self._pos:
            self._drop_body()
            self._pos = position
        return self._pos

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self.size - self._pos)
        if wanted <= 0:
            return 0
        return self._retrying(lambda: self._read_some(memoryview(buffer)[:wanted]))

    def _read_some(self, view: memoryview) -> int:
        if self._body is None or self._pos >= self._body_end:
            self._drop_body()
            self._open(len(view) if self._seekable else None)
        received = self._body.readinto(view)
        if received == 0:
            raise _ShortBody(f"body ended at byte {self._pos:,}, before its range did")
        self._pos += received
        return received

    def _open(self, length: int | None) -> None:
        request = {"Bucket": self._bucket, "Key": self._key}
        if self.etag is not None:
            request["IfMatch"] = f'"{self.etag}"'
        end = self.size if length is None else self._pos + length
        if self._pos > 0 or length is not None:
            request["Range"] = f"bytes={self._pos}-{end - 1}"
        response = _s3().get_object(**request)
        etag = response["ETag"].strip('"')
        if self.etag is None:
            self.etag = etag
            if self.size is None:  # this GET was of the whole object
                self.size = end = response["ContentLength"]
        elif etag != self.etag:  # a server that ignores If-Match
            raise self._changed()
        if "Range" in request and not response.get("ContentRange", "").startswith(f"bytes {self._pos}-"):
            raise _ShortBody(f"asked for bytes from {self._pos:,}, got {response.get('ContentRange')}")
        self._body, self._body_end = response["Body"], end

    def _retrying(self, attempt: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        failures = 0
        while True:
            try:
                return attempt()
            except (*_s3_transient_errors(), _ShortBody) as exc:
                self._drop_body()
                failures += 1
                if failures >= self._attempts:
                    detail = " ".join(str(exc).split())
                    raise InputError(
                        f"{self.uri}: S3 read failed {failures} times in a row at byte {self._pos:,} ({detail}); "
                        "retry later, or allow more attempts with AWS_MAX_ATTEMPTS"
                    ) from None
                time.sleep(
                    self._jitter.uniform(0, min(_RESUME_MAX_DELAY_S, _RESUME_BASE_DELAY_S * 2**failures))
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                    raise self._changed() from None
                raise _s3_error(self.uri, exc) from None
            except BotoCoreError as exc:
                raise _s3_error(self.uri, exc) from None

    def _changed(self) -> InputError:
        return InputError(
            f"{self.uri}: the object changed while being read (ETag {self.etag} no longer matches); "
            "run again once it is no longer being written"
        )

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class _ShortBody(Exception):
    """A response body that ended before the range it was asked for: retried like a dropped connection."""


# Delays between attempts to resume a read: full jitter over an exponential bound, capped as botocore's.
_RESUME_BASE_DELAY_S = 0.05
_RESUME_MAX_DELAY_S = 20.0


def _s3_transient_errors() -> tuple[type[BaseException], ...]:
    """What a dropped, reset or stalled connection raises from a request or a streaming body, once botocore's
    own retries (of requests only, never of a body) are spent."""
    from botocore.exceptions import ConnectionError, HTTPClientError, IncompleteReadError

    return (ConnectionError, HTTPClientError, IncompleteReadError)


class _LocalReader(io.FileIO):
    """A local file as a raw stream, with the `size` and `etag` an S3 object reader has."""

    etag = None

    @property
    def size(self) -> int:
        return os.fstat(self.fileno()).st_size


def _open_local(uri: str) -> _LocalReader:
    try:
        return _LocalReader(uri)
    except OSError as exc:
        error = InputError if isinstance(exc, FileNotFoundError) else UnreadableFile
        raise error(f"{uri}: cannot open input file ({exc.strerror})") from None


@dataclass(frozen=True)
class FileDigest:
    """A file as lock.json records it: its size and sha256, and on S3 the ETag of the version read."""

    uri: str
    size: int
    sha256: str
    etag: str | None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"uri": self.uri, "size": self.size, "sha256": self.sha256}
        if self.etag:
            entry["etag"] = self.etag
        return entry


class ReadDigest:
    """The sha256 of an input taken while a reader streams it (`open_binary(uri, digest)` and the like), so
    recording the input costs no second read. Only bytes met in order from the start are hashed: `finish`
    reads just what the reader left, such as the rest of a file it stopped in, or a Parquet footer read
    before the column chunks."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._hashed_bytes = 0
        self._size: int | None = None
        self._etag: str | None = None

    def _watch(self, raw: Any, start: int = 0) -> _DigestingReader:
        self._size, self._etag = raw.size, raw.etag
        return _DigestingReader(raw, self, start)

    def _add(self, offset: int, data: memoryview) -> None:
        if offset <= self._hashed_bytes < offset + len(data):
            self._sha256.update(data[self._hashed_bytes - offset :])
            self._hashed_bytes = offset + len(data)

    def finish(self, uri: str) -> FileDigest:
        """The digest of the whole of `uri` (the version read, on S3), reading only the bytes not yet hashed."""
        if self._size is None or self._hashed_bytes < self._size:
            start = self._hashed_bytes
            if not is_s3(uri):
                raw = _open_local(uri)
                raw.seek(start)
            elif self._size is None:
                raw = _S3ObjectReader(uri)
            else:
                raw = _S3ObjectReader(uri, start=start, size=self._size, etag=self._etag)
            with self._watch(raw, start) as reader:
                while reader.read(_READ_CHUNK_BYTES):
                    pass
        return FileDigest(uri, self._hashed_bytes, self._sha256.hexdigest(), self._etag)


class _DigestingReader(io.RawIOBase):
    """A raw stream that hands each byte it reads, with its offset, to a ReadDigest."""

    def __init__(self, raw: Any, digest: ReadDigest, start: int):
        self._raw, self._digest, self._pos = raw, digest, start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self._raw.seek(offset, whence)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        received = self._raw.readinto(buffer)
        self._digest._add(self._pos, memoryview(buffer)[:received])
        self._pos += received
        return received

    def close(self) -> None:
        self._raw.close()
        super().close()


class SkippedCorruptFrame(zstandard.ZstdError):
    """A read met a corrupt zstd frame and skipped to the next one: reading again goes on there, so a reader
    records the loss and continues instead of ending the file."""

    def __init__(self, compressed_offset: int, detail: str):
        super().__init__(f"corrupt zstd frame at compressed byte {compressed_offset}, skipped: {detail}")


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZSTD_SKIPPABLE_MAGIC = 0x184D2A50  # low 4 bits are free (RFC 8878, 3.1.2)
_ZSTD_BLOCK_HEADER_BYTES = 3
_ZSTD_RLE_BLOCK = 1
_ZSTD_CHECKSUM_FLAG = 0x04


def _zstd_frame_header_rest_bytes(descriptor: int) -> int:
    """Bytes after the Frame_Header_Descriptor: window descriptor, dictionary id, content size (RFC 8878)."""
    single_segment = bool(descriptor & 0x20)
    window_bytes = 0 if single_segment else 1
    dictionary_id_bytes = (0, 1, 2, 4)[descriptor & 0x03]
    content_size_bytes = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
    return window_bytes + dictionary_id_bytes + content_size_bytes


class _ZstdFramesReader(io.RawIOBase):
    """Concatenated zstd frames, fed to the decoder one block at a time.

    A block never decodes to more than 128 KiB (RFC 8878, Block_Maximum_Size), so memory stays bounded
    however far a bomb expands, and the caller's line cap applies before anything grows. Walking the frame
    layout also tells where frames start: a corrupt frame raises SkippedCorruptFrame and reading goes on
    at the next frame, so only that frame is lost. Input that ends inside a frame raises EOFError (zstandard's
    own stream_reader ends quietly there, which would hide a cut-off file).
    """

    _SCAN_CHUNK_BYTES = 1024 * 1024

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._dctx = zstandard.ZstdDecompressor()
        # Compressed bytes consumed so far; `_pushed_back` is input to consume again after a resync.
        self._offset = 0
        self._pushed_back = b""
        # Input of the frame part being decoded, searched for the next frame when that part is corrupt.
        self._unit = b""
        self._pieces = self._decoded_pieces()
        self._pending = b""
        self._pending_pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pending_pos == len(self._pending):
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            if isinstance(piece, SkippedCorruptFrame):
                raise piece
            self._pending, self._pending_pos = piece, 0
        n = min(len(buffer), len(self._pending) - self._pending_pos)
        buffer[:n] = self._pending[self._pending_pos : self._pending_pos + n]
        self._pending_pos += n
        return n

    def _decoded_pieces(self) -> Iterator[bytes | SkippedCorruptFrame]:
        while True:
            frame_start = self._offset
            magic = self._read_input(4)
            if not magic:
                return
            try:
                yield from self._decode_frame(magic)
            except (zstandard.ZstdError, EOFError) as exc:
                found_next_frame = self._resync()
                if isinstance(exc, EOFError) and not found_next_frame:
                    raise
                yield SkippedCorruptFrame(frame_start, str(exc))
                if not found_next_frame:
                    return

    def _decode_frame(self, magic: bytes) -> Iterator[bytes]:
        if len(magic) < 4:
            raise EOFError("zstd input ended inside a frame")
        if int.from_bytes(magic, "little") & ~0x0F == _ZSTD_SKIPPABLE_MAGIC:
            self._skip(int.from_bytes(self._take(4), "little"))
            return
        if magic != _ZSTD_MAGIC:
            # The next frame may start inside these four bytes (a stray byte before it).
            self._unit = magic[1:]
            raise zstandard.ZstdError(f"not a zstd frame (starts {magic.hex()})")
        self._unit = b""
        decoder = self._dctx.decompressobj()
        descriptor = self._take(1)
        decoder.decompress(magic + descriptor + self._take(_zstd_frame_header_rest_bytes(descriptor[0])))
        last_block = False
        while not last_block:
            self._unit = b""
            header = self._take(_ZSTD_BLOCK_HEADER_BYTES)
            fields = int.from_bytes(header, "little")
            last_block, block_type, block_size = bool(fields & 1), (fields >> 1) & 3, fields >> 3
            body = self._take(1 if block_type == _ZSTD_RLE_BLOCK else block_size)
            if decoded := decoder.decompress(header + body):
                yield decoded
        if descriptor[0] & _ZSTD_CHECKSUM_FLAG:
            decoder.decompress(self._take(4))
        if not decoder.eof:
            raise zstandard.ZstdError("frame did not end after its last block")

    def _take(self, size: int) -> bytes:
        """Exactly `size` bytes of the frame being decoded (at most a block, about 2 MiB)."""
        data = self._read_input(size)
        self._unit += data
        if len(data) < size:
            raise EOFError("zstd input ended inside a frame")
        return data

    def _read_input(self, size: int) -> bytes:
        data = self._pushed_back[:size]
        self._pushed_back = self._pushed_back[size:]
        if len(data) < size:
            data += self._raw.read(size - len(data))
        self._offset += len(data)
        return data

    def _skip(self, size: int) -> None:
        while size > 0:
            data = self._read_input(min(size, self._SCAN_CHUNK_BYTES))
            if not data:
                raise EOFError("zstd input ended inside a skippable frame")
            size -= len(data)

    def _resync(self) -> bool:
        """Go on at the next frame magic, looking first in the failed part (a damaged block size may have
        swallowed the next frame), then further on; False when no frame is left."""
        window = self._unit
        while (found := window.find(_ZSTD_MAGIC)) < 0:
            chunk = self._read_input(self._SCAN_CHUNK_BYTES)
            if not chunk:
                return False
            # Keep three bytes, as a magic may straddle two chunks.
            window = window[-3:] + chunk
        self._pushed_back = window[found:] + self._pushed_back
        self._offset -= len(window) - found
        return True

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_binary(uri: str, digest: ReadDigest | None = None) -> BinaryIO:
    """A buffered streaming reader; S3 objects are streamed, never downloaded whole. A `digest` hashes the
    bytes as they are read."""
    raw = _S3ObjectReader(uri) if is_s3(uri) else _open_local(uri)
    return io.BufferedReader(digest._watch(raw) if digest else raw, buffer_size=_READ_CHUNK_BYTES)


def open_seekable(uri: str, digest: ReadDigest | None = None, size: int | None = None) -> BinaryIO:
    """A seekable reader (local file, or S3 by ranges) for formats with a footer index. A caller that knows
    the object's `size` (recorded when it was written) spares S3 the HEAD that asks for it; the first ranged
    GET then pins the ETag the later ones must match."""
    if is_s3(uri) and size is not None:
        raw = _S3ObjectReader(uri, size=size, seekable=True)
    elif is_s3(uri):
        st = stat(uri)
        raw = _S3ObjectReader(uri, size=st.size, etag=st.etag, seekable=True)
    else:
        raw = _open_local(uri)
    return io.BufferedReader(digest._watch(raw) if digest else raw, buffer_size=_READ_CHUNK_BYTES)


def read_range(uri: str, start: int, length: int) -> bytes:
    """`length` bytes of a file or S3 object from byte `start` (fewer at its end): one ranged GET on S3, so a
    lookup in a large sorted file costs a few small requests instead of a download."""
    if length <= 0:
        return b""
    if not is_s3(uri):
        with open_binary(uri) as f:
            f.seek(start)
            return f.read(length)
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        body = _s3().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{start + length - 1}")["Body"]
        return body.read()
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(uri, exc) from None


def relative(uri: str, root: str) -> str:
    """`uri` as a path relative to the folder or S3 prefix `root` holding it."""
    if is_s3(uri):
        return uri[len(root.rstrip("/")) + 1 :]
    return os.path.relpath(uri, root)


def compression_of(uri: str) -> str | None:
    """The codec named by the file extension (one of CODECS), or None for plain."""
    for ext in CODECS:
        if uri.endswith("." + ext):
            return ext
    return None


def open_decompressed(uri: str, digest: ReadDigest | None = None) -> BinaryIO:
    """A streaming reader of the decompressed bytes; errors from corrupt data surface on read. A `digest`
    hashes the stored (compressed) bytes as they are read."""
    raw = open_binary(uri, digest)
    codec = compression_of(uri)
    if codec == "gz":
        # GzipFile reads concatenated members, as written by per-record gzip (WARC) and `cat a.gz b.gz`.
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if codec == "zst":
        return io.BufferedReader(_ZstdFramesReader(raw), buffer_size=_READ_CHUNK_BYTES)
    if codec == "bz2":
        return bz2.BZ2File(raw)
    if codec == "xz":
        return lzma.LZMAFile(raw)
    return raw


def stat(uri: str) -> FileStat:
    if not is_s3(uri):
        try:
            return FileStat(uri, os.stat(uri).st_size, None)
        except OSError as exc:
            raise InputError(f"{uri}: cannot stat input file ({exc.strerror})") from None
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        head = _s3().head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(uri, exc) from None
    return FileStat(uri, head["ContentLength"], head.get("ETag", "").strip('"') or None)


def sha256(uri: str, size: int | None = None) -> str:
    """The sha256 of a regular file or an S3 object. Given the `size` recorded for it (a lock's), reading stops
    once past that size: a path in a lock can be edited to name anything, and a longer file must fail at
    once rather than be read to its end, if it has one."""
    if not is_s3(uri):
        _check_regular_file(uri)
    digest = hashlib.sha256()
    read_bytes = 0
    with open_binary(uri) as f:
        while chunk := f.read(_READ_CHUNK_BYTES):
            read_bytes += len(chunk)
            if size is not None and read_bytes > size:
                raise InputError(
                    f"{uri}: longer than the {size:,} bytes recorded; it changed or is not that file"
                )
            digest.update(chunk)
    if size is not None and read_bytes != size:
        raise InputError(
            f"{uri}: {read_bytes:,} bytes read, {size:,} recorded; it changed or is not that file"
        )
    return digest.hexdigest()


def local_file(uri: str) -> str:
    """A local path holding `uri`'s bytes, for readers that need a file (fastText, memory maps, np.load): a
    local path as it is; an S3 object fetched once per machine into the scratch cache. The copy is named by
    the object's ETag and size, so every process of a worker shares it and a changed object is fetched anew;
    it appears only complete and verified (renamed from a temporary name), and a lock per copy keeps
    processes fetching at once from downloading it twice."""
    if not is_s3(uri):
        return uri
    head = stat(uri)
    if head.etag is None:
        raise InputError(
            f"{uri}: the store gave no ETag, so a cached copy could not be told from a changed one"
        )
    folder = scratch_dir("objects")
    path = os.path.join(folder, hashlib.sha256(f"{head.etag}\0{head.size}".encode()).hexdigest())
    if os.path.exists(path):
        return path
    with open(path + ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            _download(head, folder, path)
    return path


def scratch_dir(*parts: str) -> str:
    """A folder of this machine's disposable scratch (`CURATION_SCRATCH`, else under the system temp dir,
    one per user), never under the working directory."""
    root = os.environ.get("CURATION_SCRATCH") or os.path.join(
        tempfile.gettempdir(), f"curation-{os.getuid()}"
    )
    folder = os.path.join(root, *parts)
    os.makedirs(folder, exist_ok=True)
    return folder


def _download(head: FileStat, folder: str, path: str) -> None:
    """The object `head` describes, at `path`: fetched only while its ETag still matches, and checked against
    its size. (An ETag is not always the MD5 of the bytes: not for multipart uploads, nor under SSE-KMS.)"""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(head.uri)
    fd, tmp_path = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            body = _s3().get_object(Bucket=bucket, Key=key, IfMatch=head.etag)["Body"]
            while chunk := body.read(_READ_CHUNK_BYTES):
                out.write(chunk)
            size = out.tell()
        if size != head.size:
            raise InputError(f"{head.uri}: {size:,} bytes fetched of the object's {head.size:,}; retry")
        os.replace(tmp_path, path)
    except (ClientError, BotoCoreError) as exc:
        raise _s3_error(head.uri, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)


def _check_regular_file(path: str) -> None:
    """Only a regular file is hashed: a device such as /dev/zero never ends, and a pipe waits for a writer."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InputError(f"{path}: cannot open input file ({exc.strerror})") from None
    if not S_ISREG(mode):
        raise InputError(
            f"{path}: not a regular file (a device, pipe or folder), so it is not hashed; "
            "only regular files and S3 objects are"
        )


def exists(uri: str) -> bool:
    """Whether a file or S3 object is there. A store that could not be asked at all (no credentials, no
    endpoint) is an InputError saying so, not a missing file."""
    if not is_s3(uri):
        return os.path.exists(uri)
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3(uri)
    try:
        _s3().head_object(Bucket=bucket, Key=key)
    except ClientError:
        # 404; or 403, which S3 answers for a missing key to a caller who may not list the bucket.
        return False
    except BotoCoreError as exc:
        raise _s3_error(uri, exc) from None
    return True


def remove(uri: str) -> None:
    """Delete a file; deleting one that is already gone is not an error (as on S3)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        _s3().delete_object(Bucket=bucket, Key=key)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(uri)


def remove_tree(uri: str) -> None:
    """Delete a folder, or on S3 every object under the prefix `uri/`; one already gone is not an error."""
    if not is_s3(uri):
        shutil.rmtree(uri, ignore_errors=True)
        return
    bucket, prefix = split_s3(uri.rstrip("/") + "/")
    client = _s3()
    # A listing page holds at most 1,000 keys, as many as one delete_objects request takes.
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


def create_exclusive(uri: str, data: bytes) -> bool:
    """Write `data` to `uri` only if nothing is there yet, in one step no other writer can interleave with
    (O_EXCL locally, a conditional put on S3); False when something already was."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        try:
            _s3().put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")
        except Exception as exc:
            if _error_code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise _s3_error(uri, exc) from exc
        return True
    os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    try:
        fd = os.open(uri, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return True


# --- writing -----------------------------------------------------------------------------------------


class _S3MultipartWriter(io.RawIOBase):
    """Buffers writes into parts of `part_size_bytes`; nothing is visible until `complete()`.

    A small object (under one part) becomes a single put_object, so no multipart upload is left to abort.
    """

    def __init__(self, bucket: str, key: str, part_size_bytes: int):
        self._bucket, self._key, self._part_size = bucket, key, part_size_bytes
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        """Any bytes-like object; a numpy array is taken as its bytes (as a local file takes it), not added
        element-wise, and the count returned is of bytes, not of array items."""
        view = memoryview(data).cast("B")
        self._buffer += view
        while len(self._buffer) >= self._part_size:
            self._upload_part(bytes(self._buffer[: self._part_size]))
            del self._buffer[: self._part_size]
        return view.nbytes

    def _upload_part(self, data: bytes) -> None:
        client = _s3()
        if self._upload_id is None:
            self._upload_id = client.create_multipart_upload(Bucket=self._bucket, Key=self._key)["UploadId"]
        number = len(self._parts) + 1
        response = client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def complete(self) -> None:
        client = _s3()
        if self._upload_id is None:
            client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
            return
        if self._buffer:
            self._upload_part(bytes(self._buffer))
        client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},
        )

    def abort(self) -> None:
        if self._upload_id is not None:
            _s3().abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)


# atomic_write's temporary names: mkstemp's eight random characters between the file's name and `.tmp`.
# The names `_new_temporary_file` gives, and those of earlier versions (mkstemp's 8 characters).
_TEMPORARY_NAME = re.compile(r"\..+\.(?:[0-9a-f]{12}|[a-z0-9_]{8})\.tmp")


def remove_temporaries(folder: str) -> int:
    """Remove what atomic_writes under `folder` left unfinished when their process was killed: local
    temporary files, and on S3 the multipart uploads never completed. Returns how many were removed. Only
    for a caller sure that no one is writing there (the run lock's holder)."""
    if is_s3(folder):
        return _abort_multipart_uploads(folder)
    removed = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            if _TEMPORARY_NAME.fullmatch(name):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(dirpath, name))
                    removed += 1
    return removed


def _abort_multipart_uploads(folder: str) -> int:
    bucket, prefix = split_s3(folder)
    prefix = prefix.rstrip("/") + "/"
    client = _s3()
    removed = 0
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_write(uri: str, part_size_bytes: int = DEFAULT_PART_SIZE_BYTES) -> Iterator[BinaryIO]:
    """A binary writer whose file appears under `uri` only if the block ends without an exception."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        writer = _S3MultipartWriter(bucket, key, part_size_bytes)
        try:
            yield writer  # type: ignore[misc]
        except BaseException:
            writer.abort()
            raise
        writer.complete()
        return
    folder = os.path.dirname(os.path.abspath(uri))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = _new_temporary_file(folder, os.path.basename(uri))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp_path, uri)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
        if isinstance(exc, OSError) and exc.filename is None:
            # A failed write (a full disk) names no file. The folder is named, not `uri`: an error while
            # writing several files at once passes through each of their atomic_writes.
            exc.filename = folder
        raise


def _new_temporary_file(folder: str, name: str) -> tuple[int, str]:
    """A new file in `folder` for `atomic_write`, with mode 0666 less the umask as open() gives (mkstemp's
    0600 would keep the outputs from the user's group and others, whatever their umask says)."""
    while True:
        path = os.path.join(folder, f".{name}.{random.getrandbits(48):012x}.tmp")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), path
        except FileExistsError:
            continue


def upload_file(local_path: str, uri: str) -> None:
    """Copy a local file to `uri` as `atomic_write` writes, streaming it in parts."""
    with open(local_path, "rb") as src, atomic_write(uri) as dst:
        shutil.copyfileobj(src, dst, _READ_CHUNK_BYTES)


def move_file(local_path: str, uri: str) -> None:
    """Put a finished local file at `uri` and remove it from local disk: a rename on local disk (so keep the
    file on the destination's filesystem), an upload completed only on success to S3."""
    if not is_s3(uri):
        os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
        os.replace(local_path, uri)
        return
    upload_file(local_path, uri)
    os.remove(local_path)
