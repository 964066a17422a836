"""Recompute one clinic's analytics counters for a period from the source items.

    python -m chalicelib.analytics.rebuild --clinic <clinic id> --from 2026-11-01 --to 2026-11-30

Reads the clinic's calendar (its bookings), their signed conclusions and feedback answers, and writes the
day counters of the period over the live ones (money, cashback and scheduled minutes are kept: see
``AnalyticsService.rebuild``). Safe to run while events flow: a source applied meanwhile is corrected by
its next event or by running the command again.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    from chalicelib.analytics import models as m
    from chalicelib.core.ids import is_ulid

    parser = argparse.ArgumentParser(prog="python -m chalicelib.analytics.rebuild", description=__doc__)
    parser.add_argument("--clinic", required=True)
    parser.add_argument("--from", dest="date_from", required=True)
    parser.add_argument("--to", dest="date_to", required=True)
    args = parser.parse_args(argv)
    if not is_ulid(args.clinic):
        print("--clinic: not a clinic id", file=sys.stderr)
        return 2
    try:
        period = m.RebuildIn.model_validate({"date_from": args.date_from, "date_to": args.date_to})
    except Exception as exc:  # a ValidationError: say which field
        print(f"bad period: {exc}", file=sys.stderr)
        return 2
    from chalicelib import bootstrap

    result = bootstrap.analytics().rebuild(args.clinic, period.date_from, period.date_to)
    print(json.dumps({"clinic_id": args.clinic, **result}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
