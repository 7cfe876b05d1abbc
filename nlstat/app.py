"""Run one command line: parse, dispatch to the mode, map failures to netstat's statuses.

This is the one place that turns exceptions into stderr lines and exit statuses.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from typing import Sequence

from nlstat.env import Environment
from nlstat.errors import Exit, NlstatError


def main(argv: Sequence[str], env: Environment) -> int:
    try:
        return _main(argv, env)
    except Exit as stop:
        _flush(env)
        return stop.status
    except NlstatError as err:
        _flush(env)
        env.warn(f"nlstat: {err}")
        return err.status
    except KeyboardInterrupt:
        # Ctrl-C ends -c quietly, as it ends netstat (which dies of SIGINT: 130 in a shell).
        _flush(env)
        return 130
    except BrokenPipeError:
        return _broken_pipe()
    except OSError as err:
        if err.errno == errno.EPIPE:
            return _broken_pipe()
        env.warn(f"nlstat: {err}")
        return 1


def _main(argv: Sequence[str], env: Environment) -> int:
    from nlstat import cli
    from nlstat.modes import MODULES

    parsed = cli.parse(argv, env)
    if isinstance(parsed, int):
        return parsed
    if parsed.backend is not None:
        env.backend = parsed.backend
    module = importlib.import_module(MODULES[parsed.mode])
    status: int = module.run(parsed, env)
    _flush(env)
    return status


def _flush(env: Environment) -> None:
    try:
        env.stdout.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError):
        pass


def _broken_pipe() -> int:
    # `nlstat -ant | head -1`: the reader left. End quietly, as netstat does (SIGPIPE), without
    # letting the interpreter complain again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141
