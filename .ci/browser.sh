#!/usr/bin/env bash
# The report and notebook 00 in a real browser: Debian's chromium driven by Playwright for Python
# (tests/test_browser.py). Installs what it needs and can be run any number of times:
#   - chromium from Debian's packages, when /usr/bin/chromium is missing (needs root, as on CI);
#   - the kit's virtual environment with the test extra (Playwright, pypdf), through make.
# Playwright's own browser download is never used: the test passes executable_path.
# Usage: bash .ci/browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "chromium is missing; install it with: sudo apt-get install -y chromium" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium > /dev/null
fi
/usr/bin/chromium --version

make .venv/.fdkit-installed
.venv/bin/python -c "import playwright, pypdf" 2>/dev/null \
    || .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"

# -p no:nbval: this file holds no notebooks; the browser runs notebook 00 itself.
.venv/bin/python -m pytest -p no:nbval -o addopts="-ra --strict-markers" tests/test_browser.py -v
