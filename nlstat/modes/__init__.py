"""One module per netstat mode. Each has `run(query, env) -> int`: collect, format, write.

`app` imports only the module the query's mode needs, so a small mode never pays for the
socket decoders and a socket listing never imports the statistics tables.
"""

MODULES = {
    "sockets": "nlstat.modes.sockets",
    "route": "nlstat.modes.routes",
    "interfaces": "nlstat.modes.interfaces",
    "statistics": "nlstat.modes.statistics",
    "masquerade": "nlstat.modes.masquerade",
    "count": "nlstat.modes.count",
    "metrics": "nlstat.modes.metrics",
    "watch": "nlstat.modes.watch",
}
