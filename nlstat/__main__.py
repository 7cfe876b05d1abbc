"""Entry point: `nlstat ARGS` and `python -m nlstat ARGS`."""

from __future__ import annotations

import sys


def main() -> int:
    from nlstat.app import main as app_main
    from nlstat.env import Environment

    return app_main(sys.argv[1:], Environment.from_os())


if __name__ == "__main__":
    sys.exit(main())
