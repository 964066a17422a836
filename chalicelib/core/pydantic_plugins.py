"""This app uses no pydantic plugins; looking for them costs a cold first request.

pydantic looks for plugins the first time it builds a validator: its loader imports
``importlib.metadata`` (with ``email`` and more, ~20 ms in a fresh process) and reads the entry points of
every installed distribution. With plugins disabled (``PYDANTIC_DISABLE_PLUGINS``, set here unless the
environment says otherwise) its ``get_plugins`` answers ``()`` without reading anything, so a loader
that answers ``()`` without importing anything is put in its place. Imported before pydantic builds any
validator (by core.model, which every model module imports). ``tests/unit/test_cold_start_parts.py`` holds
pydantic's loader to the shape this relies on (pydantic is pinned).
"""
from __future__ import annotations

import os
import sys
import types

LOADER = "pydantic.plugin._loader"

os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def _no_plugins() -> tuple[()]:
    return ()


if os.environ["PYDANTIC_DISABLE_PLUGINS"] in ("__all__", "1", "true") and LOADER not in sys.modules:
    _stub = types.ModuleType(LOADER, "No pydantic plugins (chalicelib.core.pydantic_plugins).")
    _stub.get_plugins = _no_plugins  # type: ignore[attr-defined]
    sys.modules[LOADER] = _stub
