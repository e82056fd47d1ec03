"""Beam's signature inspection of DoFns, done once instead of on every question.

Beam 2.77 answers "is this DoFn stateful?" (`userstate.get_dofn_specs`) by calling `inspect.signature` on
every method `dir(dofn)` lists, about thirty, and asks it several times per ParDo while a graph is built and
translated, then again in the worker for every bundle processor: about a sixth of the CPU of a one-document
run. A method's signature depends only on its function (code, defaults, annotations), not on the instance it
is bound to, so it is computed once per function and kept while the function lives; a DoFn's state and timer
specs are computed once per DoFn object. The answers are the ones Beam computes, so graphs and outputs are
unchanged.
"""

from __future__ import annotations

import types
import weakref

from apache_beam.transforms import core, userstate

_uncached = core.get_function_args_defaults
_uncached_specs = userstate.get_dofn_specs
# function -> {bound: (argument names, defaults)}; an entry goes with its function (a lambda of one graph).
_known: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _function_args_defaults(f):
    bound = isinstance(f, types.MethodType)
    function = f.__func__ if bound else f
    if not isinstance(function, types.FunctionType):
        return _uncached(f)
    per_binding = _known.setdefault(function, {})
    if bound not in per_binding:
        per_binding[bound] = _uncached(f)
    args, defaults = per_binding[bound]
    # Copies, as Beam's own are fresh lists its callers may keep and change.
    return list(args), list(defaults)


# DoFn -> (state specs, timer specs): a DoFn's methods are fixed once it is made (CallableWrapperDoFn's too).
_specs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _dofn_specs(dofn):
    try:
        state, timers = _specs[dofn]
    except KeyError:
        state, timers = _specs[dofn] = _uncached_specs(dofn)
    except TypeError:  # a DoFn that cannot be weakly referenced or hashed
        return _uncached_specs(dofn)
    return set(state), set(timers)


def install() -> None:
    """Make Beam's inspection use the caches in this process (idempotent): Beam looks
    `core.get_function_args_defaults` and `userstate.get_dofn_specs` up by their module-level names on each
    call (the direct runner's own import of the latter is not the FnApiRunner's path)."""
    core.get_function_args_defaults = _function_args_defaults
    userstate.get_dofn_specs = _dofn_specs
