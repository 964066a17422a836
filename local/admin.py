"""Operator commands against the configured table (the local one by default).

    python -m local.admin set-role +79000000009 platform_admin

Platform administrators are made this way, never through the public API.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "set-role":
        print(__doc__)
        return 2
    import os

    os.environ.setdefault("STAGE", "local")  # settings no longer default to local (they fail closed)
    from chalicelib.bootstrap import identity as service
    from chalicelib.identity.models import normalize_phone

    user_id = service().set_role(normalize_phone(argv[1]), argv[2])
    print(f"user {user_id} is now {argv[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
