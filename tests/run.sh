#!/bin/bash
# The test suite from a fresh machine, in one command (README.md's; .ci/run calls it verbatim):
#   1. as root with apt-get: the Debian packages the tests run (the oracles and a few tools),
#      only those missing, so a machine that has them needs no network for this step;
#   2. the Python test dependencies: pip install '.[test]';
#   3. python3 -m pytest, with this script's arguments passed on.
# Its status is pytest's; "no tests ran" (pytest's 5) is said and stays a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# net-tools: netstat, the oracle; iproute2: ip (namespaces) and ss; util-linux: unshare and
# setpriv; procps: sysctl; man-db + groff-base (groff for man's -Tutf8): the man page check;
# prometheus: promtool for the --prometheus tests; strace: what nlstat runs and writes
# (tests/system/test_security_live.py). No ping and no nft: the tests make their traffic and
# their NAT rules themselves (tests/echo.py, tests/nftables.py).
packages=(net-tools iproute2 util-linux procps man-db groff-base prometheus strace)

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    echo "tests/run.sh: no apt-get here, not installing the Debian packages ${packages[*]};" \
        "tests that need a missing one fail or skip and say why"
else
    missing=()
    for package in "${packages[@]}"; do
        [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null)" = "ii " ] ||
            missing+=("$package")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "tests/run.sh: the Debian packages the tests use are installed"
    elif [ "$(id -u)" = 0 ]; then
        echo "tests/run.sh: apt-get install ${missing[*]}"
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "tests/run.sh: not root, not installing ${missing[*]};" \
            "tests that need a missing one fail or skip and say why"
    fi
fi

python3 -m pip install -q '.[test]'

status=0
python3 -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "tests/run.sh: pytest collected no tests (status 5)" >&2
fi
exit "$status"
