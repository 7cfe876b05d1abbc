"""Entry point: `nlstat ARGS` and `python -m nlstat ARGS`."""

from __future__ import annotations

import os
import sys


def main() -> int:
    from nlstat.app import die_of
    from nlstat.app import main as app_main
    from nlstat.env import Environment

    env = Environment.from_os()
    status = app_main(sys.argv[1:], env)  # stdout is flushed: its errors are in the status
    # Python's own shutdown frees every module, cache and table one by one: 6 ms on an idle
    # host, more after a big listing, for nothing once the output is out. Flush and leave.
    try:
        env.stderr.flush()
    except BrokenPipeError:
        status = die_of("SIGPIPE")
    except (OSError, ValueError):
        pass
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
