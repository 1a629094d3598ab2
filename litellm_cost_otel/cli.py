"""The `litellm-cost-otel` command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("usage: litellm-cost-otel check PATH [--format text|json] [--strict]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
