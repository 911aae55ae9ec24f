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
# `pip install .` as a user would, from the checkout: the version comes from its git history
# (setuptools-scm). The build's scratch folder is removed afterwards.
"$WORK/venv/bin/python" -m pip install --quiet -c constraints.txt "$CHECKOUT"
rm -rf "$CHECKOUT/build"
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

# Timed from outside, as a user runs it. CPU time is printed too: on a shared machine the wall
# time mostly measures the other work running beside it (the load average says how much).
"$WORK/venv/bin/python" - "$FDKIT" "$SHIPPED" <<'PY'
import os, resource, subprocess, sys, time
fdkit, shipped = sys.argv[1], sys.argv[2]
command = [fdkit, "report", "--records", shipped, "--allocation", f"{shipped}/allocation.csv",
           "--funnel", f"{shipped}/funnel.csv", "--out", "report.html"]
started = time.perf_counter()
done = subprocess.run(command, capture_output=True, text=True)
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
if done.returncode != 0 or done.stderr:
    sys.exit(f"fdkit report failed or wrote to stderr (exit {done.returncode}):\n{done.stderr}")
load = os.getloadavg()[0]
print(f"fdkit report from the wheel: {wall:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s CPU "
      f"(load average {load:.1f} on {os.cpu_count()} cores); target <= 15 s wall; "
      "the notebook-kernel report took about 40 s")
PY
grep -q 'id="summary"' report.html

"$FDKIT" workshop --out workshop
test -f workshop/student/10_trial_report.ipynb
test -f workshop/trainer/00_start_here.ipynb
test -f workshop/synthetic/events.csv
echo "wheel check passed: synth, report and workshop work outside the checkout"
