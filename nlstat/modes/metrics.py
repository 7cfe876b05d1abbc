"""`--prometheus` (one scrape on stdout) and `--serve [ADDR:]PORT` (/metrics over HTTP)."""

from __future__ import annotations

from nlstat.env import Environment
from nlstat.errors import ExitStatus
from nlstat.query import Query


def run(query: Query, env: Environment) -> int:
    # The exposition is written by nlstat itself (format/prometheus.py): prometheus_client is
    # not needed here (the tests compare the two).
    from nlstat.metrics import Exposition, Sampler

    sampler = Sampler(query, env)
    try:
        exposition = Exposition(query, env)
        if query.metrics == "serve":
            from nlstat.serve import serve

            return serve(query, env, sampler, exposition)
        env.stdout.write(exposition.render(sampler.take()))
        return ExitStatus.OK
    finally:
        sampler.close()
