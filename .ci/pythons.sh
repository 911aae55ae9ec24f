#!/usr/bin/env bash
# Install fdkit with the pinned constraints into a fresh venv on the oldest supported Python
# (Debian 12's system python3, 3.11.2) and the newest available (3.13 from pyenv), and run the
# quick suite (`make check`) with each. Fails if either interpreter is missing under CI.
set -euo pipefail
cd "$(dirname "$0")/.."

oldest=/usr/bin/python3
newest=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$newest" ] || newest=$(command -v python3.13 || true)

for python in "$oldest" "$newest"; do
    if [ -z "$python" ] || [ ! -x "$python" ]; then
        echo "missing interpreter for the supported-Python check: '${python:-python3.13}'" >&2
        exit 1
    fi
    version=$("$python" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))')
    venv=".venv-py$version"
    echo "--- Python $version ($python) in $venv"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian splits venv support into its own package.
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv "$venv"
    fi
    start=$SECONDS
    make check VENV="$venv" PYTHON="$python"
    echo "Python $version: install + quick suite in $((SECONDS - start)) s"
done
