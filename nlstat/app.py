"""Run one command line: parse, dispatch to the mode, map failures to netstat's statuses.

This is the one place that turns exceptions into stderr lines and exit statuses.
"""

from __future__ import annotations

import importlib
import os
from typing import BinaryIO, Callable, Sequence, cast

from nlstat.env import Environment
from nlstat.errors import Exit, ExitStatus, NlstatError, OutputError
from nlstat.query import BACKENDS, MODE_WATCH, Query


def main(argv: Sequence[str], env: Environment) -> int:
    return _guarded(lambda: _main(argv, env), env)


def _guarded(work: Callable[[], int], env: Environment) -> int:
    """`work()`'s status, every failure mapped to its line and status (in a --netns child too)."""
    try:
        return _reported(work, env)
    except BrokenPipeError:
        # `nlstat -ant | head -1`: the reader left (also while flushing after an error).
        # netstat dies of SIGPIPE without a word.
        return die_of("SIGPIPE")


def _reported(work: Callable[[], int], env: Environment) -> int:
    try:
        status = work()
    except Exit as stop:
        status = stop.status
    except OutputError as err:
        env.warn(f"nlstat: {err}")
        return ExitStatus.ERROR
    except NlstatError as err:
        status = _flushed(env, err.status)
        env.warn(f"nlstat: {err}")
        return status
    except KeyboardInterrupt:
        # Ctrl-C ends -c quietly; netstat dies of SIGINT, and so do we, for the same status.
        return die_of("SIGINT")
    except BrokenPipeError:
        raise
    except OSError as err:
        status = _flushed(env, ExitStatus.ERROR)
        env.warn(f"nlstat: {err}")
        return status
    except Exception as err:  # noqa: BLE001 - the promise is: never a traceback
        status = _flushed(env, ExitStatus.SOFTWARE)
        if env.debug:
            import traceback

            traceback.print_exc(file=env.stderr)
        env.warn(f"nlstat: internal error: {type(err).__name__}: {err}")
        return status
    return _flushed(env, status)


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
        return ExitStatus.USAGE
    module = importlib.import_module(MODULES[parsed.mode])
    if parsed.save is not None or parsed.load is not None or parsed.overwrite:
        return _recorded(parsed, argv, env, module.run)
    if parsed.netns is not None or parsed.all_netns:
        return _in_namespaces(parsed, env, module.run)
    status: int = module.run(parsed, env)
    return status


def _in_namespaces(query: Query, env: Environment, run: Callable[[Query, Environment], int]) -> int:
    """The mode in a child per network namespace (nlstat/netns_run.py)."""
    if query.netns is not None and query.all_netns:
        env.warn("nlstat: --netns and --all-netns exclude each other")
        return ExitStatus.USAGE
    from nlstat import netns_run
    from nlstat.query import MODE_COUNT, MODE_METRICS

    if query.all_netns and query.mode in (MODE_COUNT, MODE_METRICS):
        # One table, one exposition over every namespace: the mode gathers the namespaces'
        # counts itself (netns_run.gather) and formats them here.
        return run(query, env)
    return netns_run.run(query, env, lambda: _guarded(lambda: run(query, env), env))


def _recorded(
    query: Query, argv: Sequence[str], env: Environment, run: Callable[[Query, Environment], int]
) -> int:
    """The mode under --save (the kernel's answers kept, then written whole) or --load (the
    kernel's answers from the file, nlstat/recording.py)."""
    problem = _recording_conflict(query)
    if problem:
        env.warn("nlstat: " + problem)
        return ExitStatus.ERROR
    from nlstat import recording

    if query.save is not None:
        recorder = recording.Recorder(
            query.save, env.proc_root, recording.argv_of_run(list(argv)), env.backend,
            query.overwrite)
        recorder.meta["replay"] = env.replay
        from nlstat import pipeline

        # Every answer must reach this process's recorder: no helper process asks for one.
        helpers, pipeline.HELPERS = pipeline.HELPERS, False
        uninstall = recording.install(recorder)
        try:
            status = run(query, env)
        except NlstatError:
            # A run that ends in nlstat's own error (a refused dump under --backend=netlink)
            # is recorded too: loading the file ends the same way.
            _flushed(env, ExitStatus.ERROR)
            recorder.write()
            raise
        except BaseException:
            recorder.discard()
            raise
        finally:
            uninstall()
            pipeline.HELPERS = helpers
        _flushed(env, status)
        recorder.write()
        return status
    assert query.load is not None
    player = recording.Player(query.load, env.proc_root)
    if query.backend is None:
        env.backend = str(player.meta.get("backend", env.backend))
    env.replay = bool(player.meta.get("replay", False))
    env.trace(recording.describe(player.meta))
    # The rows wait in an unnamed file (which a helper process may write too) until the run
    # has ended: a question the recording cannot answer must leave nothing half-printed.
    held = _held_output()
    real, env.stdout = env.stdout, held
    uninstall = recording.install(player)
    try:
        status = run(query, env)
        held.flush()
    except (recording.NotRecorded, recording.RecordingError):
        raise
    except BaseException:
        _release(held, real)
        raise
    finally:
        env.stdout = real
        uninstall()
    _release(held, real)
    return status


def _recording_conflict(query: Query) -> str:
    if query.save is not None and query.load is not None:
        return "--save and --load exclude each other"
    if query.overwrite and query.save is None:
        return "--overwrite goes with --save"
    what = "--save" if query.save is not None else "--load"
    if query.netns is not None or query.all_netns:
        return f"{what} does not go with --netns or --all-netns yet"
    if query.continuous:
        return f"{what} records one run; it does not go with -c"
    if query.metrics == "serve":
        return f"{what} records one run; it does not go with --serve"
    if query.mode == MODE_WATCH:
        return f"{what} records one run; it does not go with --watch"
    return ""


def _held_output() -> BinaryIO:
    try:
        fd = os.memfd_create("nlstat-load", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        import tempfile

        return cast(BinaryIO, tempfile.TemporaryFile())
    return cast(BinaryIO, open(fd, "w+b"))


def _release(held: BinaryIO, real: BinaryIO) -> None:
    """What the run wrote, on to stdout."""
    try:
        held.flush()
        held.seek(0)
        while True:
            block = held.read(1 << 20)
            if not block:
                break
            real.write(block)
    finally:
        held.close()


def _flushed(env: Environment, status: int) -> int:
    """Flush stdout before the run ends (and before an error's line, which follows the rows
    already printed). A write error is said in one line and fails a run that had not failed:
    netstat's stdio drops it and exits 0 with its output lost (docs/compat.md)."""
    try:
        env.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as err:  # a test's stream; the run's own stdout raises OutputError
        env.warn(f"nlstat: {OutputError(err)}")
        return status or ExitStatus.ERROR
    except OutputError as err:
        env.warn(f"nlstat: {err}")
        return status or ExitStatus.ERROR
    return status


def die_of(name: str) -> int:
    """End the way netstat ends on this signal: killed by it, nothing printed."""
    import signal  # only on these two ways out: not a start-up cost

    signum = int(getattr(signal, name))
    try:
        # Nothing buffered for stdout may reach it at exit (fd 1 may also be closed).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    except OSError:
        pass
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return 128 + signum
