"""A health probe run inside the stack's containers: exit 0 when URL answers 200.

The agent's HTTPS identity is its own self-signed certificate, and the probe only asks
whether the process in this same container answers, so it does not verify it.
"""

from __future__ import annotations

import ssl
import sys
import urllib.request


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python3 -m nvcontrol.ct.probe URL", file=sys.stderr)
        return 2
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(argv[0], timeout=4, context=context) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as err:
        print(f"{argv[0]}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
