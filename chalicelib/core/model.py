"""The base of every pydantic model, and modules imported when first used: both for cold start.

A Lambda container imports ``app`` once, then answers its first request. Building the validators of
every model of every feature at import cost most of that first request (bench/coldstart.py), though
one request needs the models of one route. So models build their validator on first use
(``defer_build``), and api modules name their feature's models through ``lazy_module``: a route's
models load with the route.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

# pydantic looks for plugins in the entry points of every installed distribution the first time it builds
# a validator (a tenth of a second on a cold first request); this app uses none. Written, not read: the
# environment is read in core.settings only.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, ConfigDict  # noqa: E402  (after the line above)


class Model(BaseModel):
    """A pydantic model whose validator is built the first time it validates or serialises."""

    model_config = ConfigDict(defer_build=True)


def lazy_module(name: str) -> ModuleType:
    """``name`` as a module that runs its body on the first attribute read (the same module object
    every importer gets: it is in ``sys.modules`` from now on)."""
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module
