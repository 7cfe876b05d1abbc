"""`--prometheus` (one scrape on stdout) and `--serve [ADDR:]PORT` (/metrics over HTTP)."""

from __future__ import annotations

from nlstat.env import Environment
from nlstat.errors import ExitStatus
from nlstat.query import Query


def run(query: Query, env: Environment) -> int:
    # The exposition is written by nlstat itself (format/prometheus.py): prometheus_client is
    # not needed here (the tests compare the two).
    from nlstat.metrics import Exposition, NetnsSampler, Sampler, SnapshotSource

    # --all-netns: the namespaces are counted by children and added up in this process.
    sampler: SnapshotSource = NetnsSampler(query, env) if query.all_netns else Sampler(query, env)
    try:
        exposition = Exposition(query, env)
        if query.metrics == "serve":
            from nlstat.serve import serve

            return serve(query, env, sampler, exposition)
        env.stdout.write(exposition.render(sampler.take()))
        return sampler.failed or ExitStatus.OK
    finally:
        sampler.close()
