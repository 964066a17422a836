"""chalicelib.core.lazy: a module named through lazy_module runs its body once, on first use, and a thread that
reads it while another thread runs the body waits for the whole module (chalice local serves on threads: the
portal's first screen sends several requests at once, and one used to meet a half-run module, a 500)."""
from __future__ import annotations

import sys
import threading
import uuid

import pytest

from chalicelib.core.lazy import lazy_module


@pytest.fixture
def slow_module(tmp_path, monkeypatch):
    """A module whose body stops half way until the test lets it go on (``gate`` events in its globals' reach)."""
    name = f"lazy_probe_{uuid.uuid4().hex[:8]}"
    gate = type(sys)("lazy_gate_" + name)
    gate.entered, gate.release, gate.runs = threading.Event(), threading.Event(), []
    monkeypatch.setitem(sys.modules, gate.__name__, gate)
    (tmp_path / f"{name}.py").write_text(
        f"import {gate.__name__} as gate\nFIRST = 1\ngate.runs.append(1)\ngate.entered.set()\n"
        "gate.release.wait(10)\nLAST = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, gate
    sys.modules.pop(name, None)


def test_nothing_runs_until_an_attribute_is_read(slow_module):
    name, gate = slow_module
    gate.release.set()
    module = lazy_module(name)
    assert gate.runs == [] and lazy_module(name) is module and sys.modules[name] is module
    assert module.LAST == 2 and gate.runs == [1]
    assert module.FIRST == 1 and gate.runs == [1]  # once


def test_a_reader_on_another_thread_waits_for_the_whole_body(slow_module):
    name, gate = slow_module
    module = lazy_module(name)
    got: dict[str, object] = {}

    def read(who: str) -> None:
        try:
            got[who] = module.LAST
        except Exception as exc:  # what a half-run module answers
            got[who] = exc

    first = threading.Thread(target=read, args=("first",))
    first.start()
    assert gate.entered.wait(10)  # the body is half way: FIRST is set, LAST is not yet
    second = threading.Thread(target=read, args=("second",))
    second.start()
    second.join(0.3)
    assert second.is_alive(), got  # waiting, not failing
    gate.release.set()
    first.join(10)
    second.join(10)
    assert got == {"first": 2, "second": 2} and gate.runs == [1]
