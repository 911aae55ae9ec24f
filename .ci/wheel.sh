#!/usr/bin/env bash
# The kit works from a wheel, outside any checkout: build and install it into a fresh virtual
# environment (pinned dependencies), then, from an empty temporary folder, run `fdkit synth`,
# `fdkit report` on the shipped trial (timed; the target is 15 s or less) and `fdkit workshop`.
# Usage: bash .ci/wheel.sh   (idempotent; leaves nothing behind but pip's cache)
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=$(pwd)
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
# Build from a copy of the tracked files, so the build leaves nothing in the checkout.
mkdir "$WORK/src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
"$WORK/venv/bin/python" -m pip install --quiet -c constraints.txt "$WORK/src"
rm -rf "$WORK/src"
FDKIT="$WORK/venv/bin/fdkit"

mkdir "$WORK/elsewhere"
cd "$WORK/elsewhere"   # nothing of the checkout is reachable from here
"$WORK/venv/bin/python" - <<'PY'
import fdkit, fdkit.resources as r
from pathlib import Path
assert "site-packages" in fdkit.__file__, f"fdkit imported from {fdkit.__file__}, not the wheel"
for name in ("notebooks", "synthetic", "docs"):
    assert "site-packages" in str(r.kit_path(name)), r.kit_path(name)
print("fdkit from the wheel:", Path(fdkit.__file__).parent)
PY

"$FDKIT" synth --out records
SHIPPED=$("$WORK/venv/bin/python" -c 'import fdkit.resources as r; print(r.kit_path("synthetic"))')
cmp records/events.csv "$SHIPPED/events.csv"   # the same records, byte for byte

start=$(date +%s.%N)
"$FDKIT" report --records "$SHIPPED" --allocation "$SHIPPED/allocation.csv" --funnel "$SHIPPED/funnel.csv" \
    --out report.html 2> report.stderr
end=$(date +%s.%N)
if [ -s report.stderr ]; then echo "fdkit report wrote to stderr:"; cat report.stderr; exit 1; fi
seconds=$("$WORK/venv/bin/python" -c "print(f'{$end - $start:.1f}')")
echo "fdkit report from the wheel: ${seconds} s wall (target <= 15 s; the notebook-kernel report took about 40 s)"
grep -q 'id="summary"' report.html

"$FDKIT" workshop --out workshop
test -f workshop/student/09_trial_report.ipynb
test -f workshop/trainer/00_start_here.ipynb
test -f workshop/synthetic/events.csv
echo "wheel check passed: synth, report and workshop work outside the checkout"
