"""Rewrite the problem responses of openapi.yaml so that generated clients can read them.

Each error response used to say its status and codes as an ``allOf`` of ``Problem`` and an object
whose ``status`` is a ``const`` (and whose ``code`` is a ``const`` or an ``enum``). JSON Schema
allows that, but client generators merge the parts into one type, and ``integer`` cannot be merged
with ``Literal[409]``: openapi-python-client dropped every error response of every operation (605
warnings), so a generated client could not read a single problem+json.

After this transform an error response's schema is ``$ref: Problem`` itself, or, where the response
adds fields (``bookings``, a required ``retry_after``), an ``allOf`` of ``Problem`` and those fields
only. The stable codes move to ``x-problem-codes`` beside the schema (a vendor extension every tool
ignores and tests/unit/test_contract.py reads); the status is the response's own status.

Idempotent; edits the text in place so the file keeps its comments, anchors and layout:

    .venv/bin/python -m tools.problem_responses openapi.yaml
"""
from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

import yaml

PROBLEM = '"#/components/schemas/Problem"'
ALL_OF = re.compile(r"^( *)allOf:\s*$")


def _flow(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000, allow_unicode=True).strip()


def transform(text: str) -> tuple[str, int]:
    lines = text.split("\n")
    out: list[str] = []
    i = changed = 0
    while i < len(lines):
        line = lines[i]
        m = ALL_OF.match(line)
        if not (m and out and out[-1].strip() == "schema:" and i + 1 < len(lines)
                and lines[i + 1].strip() == f"- $ref: {PROBLEM}"):
            out.append(line)
            i += 1
            continue
        indent = len(m.group(1))
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
            j += 1
        parts = yaml.safe_load(textwrap.dedent("\n".join(lines[i:j])))["allOf"]
        extra = dict(parts[1]) if len(parts) > 1 else {}
        props = dict(extra.get("properties") or {})
        code = props.pop("code", None) or {}
        props.pop("status", None)
        codes = [code["const"]] if "const" in code else list(code.get("enum") or [])
        required = [r for r in extra.get("required", []) if r not in ("status", "code")]
        rest = {k: v for k, v in extra.items() if k not in ("properties", "required")}
        schema_line = out.pop()
        pad = " " * (indent - 2)
        if not props and not required and not rest:
            out.append(f"{pad}schema: {{ $ref: {PROBLEM} }}")
        else:
            second: dict = {**rest}
            if props:
                second["properties"] = props
            if required:
                second["required"] = required
            block = yaml.safe_dump({"allOf": [{"$ref": "#/components/schemas/Problem"}, second]},
                                   sort_keys=False, allow_unicode=True, width=100)
            out.append(schema_line)
            out.extend(textwrap.indent(block.rstrip("\n"), " " * indent).split("\n"))
        if codes:
            out.append(f"{pad}x-problem-codes: {_flow(codes)}")
        changed += 1
        i = j
    return "\n".join(out), changed


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "openapi.yaml")
    text, changed = transform(path.read_text())
    path.write_text(text)
    print(f"{path}: {changed} problem responses rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
