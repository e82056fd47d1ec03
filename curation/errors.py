"""Errors the user sees: each names what is wrong and where, so a failed run is actionable. Failures from
below (a full disk, S3 unreachable), raised here or inside a worker, are told apart from bugs and given the
same one line."""

from __future__ import annotations

import errno
import re


class CurationError(Exception):
    """Base class for errors reported to the user without a traceback."""


class ManifestError(CurationError):
    """The manifest is malformed: the message names the file, the field and close matches."""


class InputError(CurationError):
    """An input cannot be read (missing path, corrupt compression, unreadable object)."""


class InfeasibleMixError(CurationError):
    """A mix asks for more tokens from a source than its repetition limit allows."""


class ReleaseConflictError(CurationError):
    """An output of the same name and version exists and was made from a different manifest."""


class AccountingError(CurationError):
    """Documents unaccounted for (a verdict missing or given twice, read != kept + rejected + quarantined):
    a bug or a broken runner, reported before anything is published rather than shipped."""


class RunLockedError(CurationError):
    """Another run holds the output's run lock: the message names its host, PID and start, and what to do."""


class BeamOptionError(CurationError):
    """A Beam pipeline option is unknown or has a bad value, or the runner is not one curation supports."""


class StorageError(CurationError):
    """A file or S3 object could not be written or reached: disk full, permission denied, S3 unreachable."""


# What the user can do about a failed file operation, by errno; other errnos get only the system's words.
_OS_ADVICE = {
    errno.ENOSPC: ("disk full", "free space on that filesystem (or point output.path at a larger one) and run again"),
    errno.EDQUOT: ("disk quota exceeded", "free space within your quota and run again"),
    errno.EFBIG: ("file too large", "raise the file size limit (ulimit -f) and run again"),
    errno.EACCES: ("permission denied", "give this user access to it, or choose another path"),
    errno.EPERM: ("operation not permitted", "give this user access to it, or choose another path"),
    errno.EROFS: ("read-only filesystem", "point output.path at a writable folder"),
    errno.ENOENT: ("no such file or folder", "check the path, or restore the file"),
    errno.EIO: ("I/O error", "check the disk or network filesystem holding it"),
}

# The last line of a worker's traceback as the driver receives it, with Beam's step appended:
#   OSError: [Errno 28] No space left on device: '/out/_cache/x.tmp' [while running 'DecideCorpus/Write']
_WORKER_OS_ERROR = re.compile(r"\w+Error: \[Errno (\d+)\] ([^:\n\[]+)(?:: '([^'\n]+)')?", re.M)
_WORKER_CURATION_ERROR = re.compile(r"curation\.errors\.(\w+): (.+?)(?: \[while running|\n|$)")
_WORKER_S3_ERROR = re.compile(r"botocore\.(?:exceptions|errorfactory)\.(\w+): (.+?)(?: \[while running|\n|$)")
_S3_ERROR_CODE = re.compile(r"An error occurred \((\w+)\)")
_BEAM_STEP = re.compile(r"\[while running '([^'\n]+)'\]")


def os_error(number: int, strerror: str, path: str | None, step: str | None = None) -> StorageError:
    what, advice = _OS_ADVICE.get(number, (strerror, "fix the cause and run again"))
    where = f" on {path}" if path else ""
    during = f" (in step {step})" if step else ""
    return StorageError(f"{what}{where}{during}: {advice}")


def s3_error(kind: str, message: str, step: str | None = None) -> StorageError:
    code = _S3_ERROR_CODE.search(message)  # a ClientError's code (NoSuchBucket, AccessDenied) says more
    kind = code.group(1) if code else kind
    during = f" (in step {step})" if step else ""
    return StorageError(
        f"S3 {kind}{during}: {message.rstrip('.')}; check the endpoint, credentials and bucket, then run again"
    )


def _botocore_errors() -> tuple[type[BaseException], ...]:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        return ()
    return (BotoCoreError, ClientError)


def expected_failure(exc: BaseException) -> CurationError | None:
    """The one-line error for a failure the user can act on, or None for a bug (whose traceback is the
    report). Looks through the exception's causes, and through the text of a worker's traceback, which is
    all that reaches the driver from a worker process."""
    text = str(exc)
    step = _BEAM_STEP.search(text)
    step_name = step.group(1) if step else None
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen:
        seen.append(cause)
        if isinstance(cause, CurationError):
            return cause
        if isinstance(cause, OSError) and cause.errno is not None:
            return os_error(cause.errno, cause.strerror or str(cause), cause.filename, step_name)
        if isinstance(cause, _botocore_errors()):
            return s3_error(type(cause).__name__, str(cause), step_name)
        cause = cause.__cause__ or cause.__context__
    return _worker_failure(text, step_name)


def _worker_failure(text: str, step: str | None) -> CurationError | None:
    found = _WORKER_CURATION_ERROR.search(text)
    error_type = globals().get(found.group(1)) if found else None
    if isinstance(error_type, type) and issubclass(error_type, CurationError):
        return error_type(found.group(2))
    # The innermost error is the last one in the text; earlier ones are Beam's re-raises of it.
    os_errors = list(_WORKER_OS_ERROR.finditer(text))
    if os_errors:
        number, strerror, path = os_errors[-1].groups()
        return os_error(int(number), strerror.strip(), path, step)
    found = _WORKER_S3_ERROR.search(text)
    if found:
        return s3_error(found.group(1), found.group(2), step)
    return None
