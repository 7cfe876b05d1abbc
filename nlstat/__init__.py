"""nlstat: netstat rebuilt on netlink, byte-identical output, fast on busy hosts.

As a library (docs/api.md):

    >>> import nlstat
    >>> [s.local_port for s in nlstat.sockets("tcp", state="listen")]
    >>> nlstat.sockets(kind="tcp", state="established", dport=443, src="198.18.0.0/15")

`sockets`, `routes`, `interfaces`, `groups`, `statistics`, `masquerade` and the exception
classes are loaded on first use (module __getattr__): every command line imports this
package, and the CLI's start-up must not pay for the API.
"""

# Not typing's: importing typing here would cost the CLI's start-up (mypy reads any
# TYPE_CHECKING as true).
TYPE_CHECKING = False

__version__ = "0.1.0"

# name -> module that defines it
_LAZY = {
    "sockets": "nlstat.api",
    "routes": "nlstat.api",
    "interfaces": "nlstat.api",
    "groups": "nlstat.api",
    "statistics": "nlstat.api",
    "masquerade": "nlstat.api",
    "OwnedSocket": "nlstat.api",
    "NlstatError": "nlstat.errors",
    "InvalidArgument": "nlstat.errors",
    "InvalidFilter": "nlstat.errors",
    "BackendUnavailable": "nlstat.errors",
    "MalformedInput": "nlstat.errors",
    "Filters": "nlstat.filters",
    "InetSocket": "nlstat.model.sockets",
    "UnixSocket": "nlstat.model.sockets",
}

__all__ = [
    "BackendUnavailable",
    "Filters",
    "InetSocket",
    "InvalidArgument",
    "InvalidFilter",
    "MalformedInput",
    "NlstatError",
    "OwnedSocket",
    "UnixSocket",
    "__version__",
    "groups",
    "interfaces",
    "masquerade",
    "routes",
    "sockets",
    "statistics",
]

if TYPE_CHECKING:
    from typing import Any

    from nlstat.api import (
        OwnedSocket,
        groups,
        interfaces,
        masquerade,
        routes,
        sockets,
        statistics,
    )
    from nlstat.errors import (
        BackendUnavailable,
        InvalidArgument,
        InvalidFilter,
        MalformedInput,
        NlstatError,
    )
    from nlstat.filters import Filters
    from nlstat.model.sockets import InetSocket, UnixSocket


def __getattr__(name: str) -> "Any":
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nlstat' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_LAZY))
