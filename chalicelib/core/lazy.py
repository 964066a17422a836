"""Modules imported when first used (cold start: see chalicelib/core/model.py). No pydantic here: an api
module names its models through ``lazy_module`` without importing pydantic at ``import app``.

Not ``importlib.util.LazyLoader``: in Python 3.11 it turns the module into a plain one *before* running its
body, so a second thread reading an attribute meanwhile meets a half-run module (``AttributeError``: a 500 in
``chalice local``, which serves requests on threads; the portal's first screens send several at once). Here
the body runs under the module's own lock, a concurrent reader waits for it, and the module turns plain after.
"""
from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

_CREATE = threading.Lock()


class _LazyModule(ModuleType):
    """A module whose body has not run yet; the first attribute read runs it (once, whichever thread reads)."""

    def __getattribute__(self, attr: str):
        d = ModuleType.__getattribute__(self, "__dict__")
        lock = d.get("__lazy_lock__")
        if lock is not None:
            with lock:
                if type(self) is _LazyModule and not d.get("__lazy_running__"):
                    d["__lazy_running__"] = True  # the body itself (or a circular import) reads it plainly
                    try:
                        d["__spec__"].loader.exec_module(self)
                        self.__class__ = ModuleType  # type: ignore[assignment]  # a plain module from now on
                        d.pop("__lazy_lock__", None)
                    finally:  # a body that raised runs again on the next read, as an import would
                        d.pop("__lazy_running__", None)
        return ModuleType.__getattribute__(self, attr)


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module that runs its body on the first attribute read (the same module object
    every importer gets: it is in ``sys.modules`` from now on)."""
    with _CREATE:
        existing = sys.modules.get(name)
        if existing is not None:
            return existing
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ImportError(f"no module named {name!r}")
        module = importlib.util.module_from_spec(spec)
        module.__dict__["__lazy_lock__"] = threading.RLock()
        module.__class__ = _LazyModule
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)
        return module
