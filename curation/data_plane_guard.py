"""A guard for a data-loss race in Beam's Python data plane (present in Beam 2.x up to at least 2.77).

The FnApiRunner sends each bundle's input to its worker processes through a
`TimeBasedBufferingClosableOutputStream`, whose background thread flushes the buffer every second: it takes
the buffered bytes, hands them to the send queue, then clears the buffer. Writes take no lock, so whatever the
runner writes while the flush is handing bytes over (a full send queue blocks it; a loaded machine stretches
it) is cleared unsent. The lost bytes are whole encoded elements, so the workers decode the rest without
error and the pipeline silently processes fewer elements: with 2 worker processes on a busy machine, decide
judged only part of the corpus. The guard makes every write take the lock the flush holds.
"""

from __future__ import annotations

from apache_beam.runners.worker import data_plane

_Unguarded = data_plane.TimeBasedBufferingClosableOutputStream

# Every method of Beam's OutputStream that appends to the buffer (coders call the typed ones directly).
_WRITERS = (
    "write",
    "write_byte",
    "write_var_int32",
    "write_var_int64",
    "write_bigendian_int16",
    "write_bigendian_int32",
    "write_bigendian_int64",
    "write_bigendian_uint64",
    "write_bigendian_float",
    "write_bigendian_double",
)


def _under_flush_lock(name: str):
    unguarded = getattr(_Unguarded, name)

    def guarded(self, *args):
        with self._flush_lock:
            return unguarded(self, *args)

    guarded.__name__ = name
    return guarded


GuardedTimeBasedStream = type(
    "GuardedTimeBasedStream",
    (_Unguarded,),
    {
        "__doc__": "Beam's time-based buffering stream whose writes cannot interleave with a periodic flush.",
        **{name: _under_flush_lock(name) for name in _WRITERS},
    },
)


def install() -> None:
    """Make Beam's data plane build guarded streams in this process (idempotent). `ClosableOutputStream.create`
    looks the class up by its module-level name on every call, so every data channel opened afterwards, the
    runner's included, gets the guarded one."""
    data_plane.TimeBasedBufferingClosableOutputStream = GuardedTimeBasedStream
