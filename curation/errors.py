"""Errors the user sees: each names what is wrong and where, so a failed run is actionable."""


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
