"""Mechanical rules applied to openapi.yaml (idempotent; edits text in place, keeping layout):

1. API Gateway's throttling (the stage's rate and burst limits) can answer 429 before any
   operation runs: every operation documents 429. One with no 429 of its own gets
   ``components/responses/Throttled`` (the gateway's ``{"message": ...}``); the app's own
   ``TooManyRequests`` also documents the gateway's body beside its problem.
2. Every integer says its size: ``format: int64`` for money amounts and epoch seconds, else
   ``int32`` (all our counters, versions and limits fit it by far).
3. Date-time patterns admit only real months, days, hours, minutes and offsets (``0000-00-00`` is
   no date); instants a client sends are in the years the server plans in (2000-2100, as
   ``booking.models.parse_instant`` checks). Calendar validity (``2026-02-30``) is left to the
   server's 422, as JSON Schema cannot say it.
4. A string whose anchored pattern bounds its length says so with ``maxLength`` (the same bound,
   stated where tools look for it: Spectral, generators); ``format: date`` strings are 10 long.
5. An object's ``version`` (optimistic locking) is an int32 at most: ``maximum: 2147483647``, as
   the models' ``le=2_147_483_647`` refuse beyond it.

    .venv/bin/python -m tools.contract_rules openapi.yaml

New paths written by hand are held to the same by Spectral (.spectral.yaml, `make contract`).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

THROTTLED_REF = '"429": { $ref: "#/components/responses/Throttled" }'
THROTTLED = '''    Throttled:
      description: |
        API Gateway's throttling answered before the API ran (the stage's rate or burst limit was
        passed): `{"message": "Too Many Requests"}`, no problem body and no Retry-After. Retry with
        exponential backoff and jitter.
      content:
        application/json:
          schema: { $ref: "#/components/schemas/GatewayMessage" }
          example: { message: Too Many Requests }
'''
GATEWAY_429 = '''        application/json:
          schema: { $ref: "#/components/schemas/GatewayMessage" }
          example: { message: Too Many Requests }
'''
INT64_NAMES = ("amount", "created", "prepayment_amount", "expires_at", "EpochSeconds")


def _throttling(lines: list[str]) -> int:
    added = 0
    i = 0
    while i < len(lines):
        if re.match(r"^      responses:( &\w+)?$", lines[i]):
            j = i + 1
            while j < len(lines) and lines[j].startswith("        "):
                j += 1
            block = lines[i + 1:j]
            if not any(re.match(r'^        "?429"?:', b) for b in block):
                # keep the statuses in order: before the first one above 429, else at the end
                at = next((k for k, b in enumerate(block) if re.match(r'^        "?([5]\d\d)"?:', b)), len(block))
                lines.insert(i + 1 + at, "        " + THROTTLED_REF)
                added += 1
        i += 1
    return added


def _components(text: str) -> str:
    if "\n    Throttled:\n" not in text:
        text = text.replace("\n  responses:\n", "\n  responses:\n" + THROTTLED, 1)
    m = re.search(r"\n    TooManyRequests:\n(?:      .*\n|\n)*", text)
    if m and "application/json:" not in m.group(0):
        block = m.group(0)
        text = text.replace(block, block.rstrip("\n") + "\n" + GATEWAY_429, 1)
    return text


def _integer_formats(lines: list[str]) -> int:
    changed = 0
    for i, line in enumerate(lines):
        name = line.strip().split(":", 1)[0]
        size = "int64" if name in INT64_NAMES else "int32"
        flow = re.search(r'\{ *type: (integer|\[integer, "null"\])(?=[,} ])', line)
        if flow and "format:" not in line:
            lines[i] = line[:flow.end()] + f", format: {size}" + line[flow.end():]
            changed += 1
            continue
        block = re.match(r"^( +)type: integer\s*$", line)
        if block:
            indent = block.group(1)
            j = i + 1
            siblings = []
            while j < len(lines) and lines[j].startswith(indent) and not lines[j].startswith(indent + " "):
                siblings.append(lines[j])
                j += 1
            k = i - 1
            while k >= 0 and lines[k].startswith(indent) and not lines[k].startswith(indent + " "):
                siblings.append(lines[k])
                k -= 1
            if not any(s.strip().startswith("format:") for s in siblings):
                parent = lines[k].strip().split(":", 1)[0] if k >= 0 else ""
                size = "int64" if parent in INT64_NAMES else "int32"
                lines.insert(i + 1, f"{indent}format: {size}")
                changed += 1
    return changed


_MONTH_DAY = r"-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_OFFSET = r"[+-]([01][0-9]|2[0-3]):[0-5][0-9]"
PATTERNS = {
    # Instant (what a client books): the server's years, seconds and fractions optional, Z or offset.
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})$":
        rf"^(20[0-9]{{2}}|2100){_MONTH_DAY}T{_CLOCK}(:[0-5][0-9](\\.[0-9]{{1,6}})?)?(Z|{_OFFSET})$",
    # A local date-time without an offset (duty shifts).
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$":
        rf"^[1-9][0-9]{{3}}{_MONTH_DAY}T{_CLOCK}(:[0-5][0-9])?$",
    # A local wall time with its offset (answers).
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}[+-][0-9]{2}:[0-9]{2}$":
        rf"^[1-9][0-9]{{3}}{_MONTH_DAY}T{_CLOCK}{_OFFSET}$",
}


def _patterns(text: str) -> tuple[str, int]:
    n = 0
    for old, new in PATTERNS.items():
        n += text.count(f'"{old}"')
        text = text.replace(f'"{old}"', f'"{new}"')
    return text, n


def _max_width(pattern: str) -> int | None:
    import re._parser as parser  # the standard library's own regex parser

    if not (pattern.startswith("^") and pattern.endswith("$")):
        return None
    try:
        width = parser.parse(pattern).getwidth()[1]
    except re.error:
        return None
    return width if width < 100_000 else None


_FLOW_PATTERN = re.compile(r'\{ *type: (string|\[string, "null"\]),(?P<rest>.*)\}')


def _max_lengths(lines: list[str]) -> int:
    changed = 0
    for i, line in enumerate(lines):
        if "maxLength" in line or "enum:" in line:
            continue
        flow = _FLOW_PATTERN.search(line)
        if flow:
            pat = re.search(r'pattern: "((?:[^"\\]|\\.)*)"', line)
            width = None
            if pat:
                width = _max_width(yaml_unescape(pat.group(1)))
            elif re.search(r"format: date(?!-)", line):
                width = 10
            if width:
                at = line.index("type: ") + len("type: ") + len(flow.group(1))
                lines[i] = line[:at] + f", maxLength: {width}" + line[at:]
                changed += 1
            continue
        block = re.match(r'^( +)pattern: "((?:[^"\\]|\\.)*)"\s*$', line) or re.match(r"^( +)format: (date)\s*$", line)
        if block:
            indent = block.group(1)
            k = i - 1
            siblings = []
            while k >= 0 and lines[k].startswith(indent) and not lines[k].startswith(indent + " "):
                siblings.append(lines[k].strip())
                k -= 1
            j = i + 1
            while j < len(lines) and lines[j].startswith(indent) and not lines[j].startswith(indent + " "):
                siblings.append(lines[j].strip())
                j += 1
            if any(sib.startswith("maxLength:") for sib in siblings) or not (
                    "type: string" in siblings or 'type: [string, "null"]' in siblings):
                continue
            width = 10 if block.group(2) == "date" and "format:" in line else _max_width(yaml_unescape(block.group(2)))
            if width:
                lines.insert(i, f"{indent}maxLength: {width}")
                changed += 1
    return changed


def yaml_unescape(value: str) -> str:
    return value.replace("\\\\", "\\")


def _versions(lines: list[str]) -> int:
    changed = 0
    for i, line in enumerate(lines):
        if re.match(r"^ +version: \{ *type: (integer|\[integer, \"null\"\]),", line) and "maximum" not in line:
            lines[i] = re.sub(r"minimum: 1(?=[,} ])", "minimum: 1, maximum: 2147483647", line, count=1)
            changed += lines[i] != line
        m = re.match(r"^( +)version:\s*$", line)
        if m and i + 1 < len(lines):
            indent = lines[i + 1][:len(lines[i + 1]) - len(lines[i + 1].lstrip())]
            j = i + 1
            body = []
            while j < len(lines) and lines[j].startswith(indent):
                body.append(lines[j].strip())
                j += 1
            if any(b.startswith("type:") and "integer" in b for b in body) and not any(
                    b.startswith("maximum:") for b in body):
                lines.insert(i + 1, f"{indent}maximum: 2147483647")
                changed += 1
    return changed


def transform(text: str) -> tuple[str, dict[str, int]]:
    text = _components(text)
    text, patterns = _patterns(text)
    lines = text.split("\n")
    paths_end = lines.index("components:")
    head, tail = lines[:paths_end], lines[paths_end:]
    throttled = _throttling(head)
    lines = head + tail
    ints = _integer_formats(lines)
    lengths = _max_lengths(lines)
    versions = _versions(lines)
    return "\n".join(lines), {"429 added": throttled, "integer formats": ints, "date-time patterns": patterns,
                              "maxLength from patterns and dates": lengths, "version maximum": versions}


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "openapi.yaml")
    text, counts = transform(path.read_text())
    path.write_text(text)
    print(f"{path}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
