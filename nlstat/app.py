"""Run one command line: parse, dispatch to the mode, map failures to netstat's statuses.

This is the one place that turns exceptions into stderr lines and exit statuses.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Sequence

from nlstat.env import Environment
from nlstat.errors import Exit, NlstatError
from nlstat.query import BACKENDS


def main(argv: Sequence[str], env: Environment) -> int:
    try:
        return _reported(argv, env)
    except BrokenPipeError:
        # `nlstat -ant | head -1`: the reader left (also while flushing after an error).
        # netstat dies of SIGPIPE without a word.
        return die_of("SIGPIPE")


def _reported(argv: Sequence[str], env: Environment) -> int:
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
        # Ctrl-C ends -c quietly; netstat dies of SIGINT, and so do we, for the same status.
        return die_of("SIGINT")
    except BrokenPipeError:
        raise
    except OSError as err:
        env.warn(f"nlstat: {err}")
        return 1
    except Exception as err:  # noqa: BLE001 - the promise is: never a traceback
        if env.debug:
            import traceback

            traceback.print_exc(file=env.stderr)
        env.warn(f"nlstat: internal error: {type(err).__name__}: {err}")
        return 70


def _main(argv: Sequence[str], env: Environment) -> int:
    if argv and argv[0] == "--compare":
        from nlstat import compare

        return compare.run(list(argv[1:]), env)

    from nlstat import cli
    from nlstat.modes import MODULES

    parsed = cli.parse(argv, env)
    if isinstance(parsed, int):
        return parsed
    if parsed.backend is not None:
        env.backend = parsed.backend
    elif env.backend not in BACKENDS:
        # NLSTAT_BACKEND gets the check --backend gets (a typo must not mean "auto").
        env.warn(f"nlstat: invalid NLSTAT_BACKEND '{env.backend}' (choose auto, netlink or proc)")
        return cli.STATUS_USAGE
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


def die_of(name: str) -> int:
    """End the way netstat ends on this signal: killed by it, nothing printed."""
    import signal  # only on these two ways out: not a start-up cost

    signum = int(getattr(signal, name))
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum
