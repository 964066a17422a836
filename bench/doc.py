"""Writing a benchmark's section of docs/benchmarks.md, between its own markers, leaving the rest as it is."""
from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(begin: str, end: str, text: str, heading: str = "") -> None:
    """Replace the text from ``<!-- {begin}`` to ``<!-- {end} -->`` with ``text`` (which carries both markers),
    or append it (under ``heading``) when the document has no such section yet."""
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
    if f"<!-- {begin}" in doc:
        head, rest = doc.split(f"<!-- {begin}", 1)
        doc = head + text + rest.split(f"<!-- {end} -->", 1)[1]
    else:
        doc = doc.rstrip() + "\n\n" + (f"## {heading}\n\n" if heading else "") + text + "\n"
    DOC.write_text(doc)
