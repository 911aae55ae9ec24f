"""Benchmark: loading at scale, ``fdkit validate`` then ``fdkit screen`` on force-sized CSV files.

Targets (issue 11, item 4): validate plus screen on a 4 M-row events file in at most 15 s end to
end and 2 GB peak memory; 10 M events in at most 60 s and 4 GB. Each command runs as a user
would run it, in its own process (start-up, reading, every check, the summary or the screen,
the output); the time is wall-clock, the CPU time that of all the process's threads (a guide
when other work slows the clock) and the memory that process's peak resident size.

The baseline, on the same machine in the same run: DuckDB reading the same two CSV files with
its multi-threaded reader and running the trial's rule as one SQL query (no checks), also in
its own process.

Making the files takes minutes (the 'force' scenario, busier, as in bench_screen.py); pass
``--data DIR`` to keep them in DIR and reuse them on the next run.

Run:  .venv/bin/python benchmarks/bench_load.py [--data DIR] [--sizes 4,10]   (needs: pip install -e ".[bench]")
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGETS = {4: (15.0, 2.0), 10: (60.0, 4.0)}  # million events: (seconds, GiB) for validate + screen
REFERENCE = "2023-02-01"


def make_csv_folders(data: Path, sizes: list[int]) -> dict[int, Path]:
    """Records folders with 1 M persons and the first N million events, written as CSV."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    sys.path.insert(0, str(HERE))
    import bench_screen

    folders = {size: data / f"events_{size}m" for size in sizes}
    if all((folder / "events.csv").exists() for folder in folders.values()):
        return folders
    parquet = data / "parquet"
    if not (parquet / "events.parquet").exists():
        parquet.mkdir(parents=True, exist_ok=True)
        print("making a force-scale extract (synthetic; minutes) ...", flush=True)
        bench_screen.make_data(parquet)

    def as_dates(table, column):
        return table.set_column(table.schema.get_field_index(column), column, pc.cast(table[column], pa.date32()))

    persons = as_dates(pq.read_table(parquet / "persons.parquet"), "date_of_birth")
    events = as_dates(pq.read_table(parquet / "events.parquet"), "offence_date")
    for size, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        for name, table in (("persons", persons), ("events", events.slice(0, size * 1_000_000))):
            # Plain, unquoted CSV as fdkit.write_records writes it (no value holds a comma).
            text = folder / f"{name}.tmp"
            pcsv.write_csv(table, text, pcsv.WriteOptions(quoting_style="none"))
            os.replace(text, folder / f"{name}.csv")
    return folders


def timed(command: list[str]) -> tuple[float, float, float]:
    """Run a command; return its wall-clock seconds, CPU seconds and peak resident memory (GiB)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss / (1 << 30 if sys.platform == "darwin" else 1 << 20)


DUCKDB_SCRIPT = """
import sys, duckdb
sys.path.insert(0, {here!r})
from bench_screen import SQL
from fdkit import offences
lookup = offences.lookup()
connection = duckdb.connect()
connection.execute("CREATE TABLE offences AS SELECT * FROM lookup")
for name in ("persons", "events"):
    connection.execute(f"CREATE TABLE {{name}} AS SELECT * FROM read_csv('{folder}/{{name}}.csv', header=true)")
print(len(connection.execute(SQL).fetchall()))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="folder to keep the generated files in, and reuse")
    parser.add_argument("--sizes", default="4,10", help="millions of events, comma-separated (default 4,10)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or Path(scratch)
        folders = make_csv_folders(data, sizes)
        fdkit = [sys.executable, "-m", "fdkit.cli"]
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (timings grow with other work)\n")
        print(f"{'events':>8}  {'step':<30}{'time':>9}{'CPU time':>10}{'peak memory':>14}")
        met_all = True
        for size, folder in folders.items():
            megabytes = (folder / "events.csv").stat().st_size / 1e6
            out = Path(scratch) / f"eligible_{size}m.csv"
            validate = timed([*fdkit, "validate", str(folder)])
            screen = timed(
                [*fdkit, "screen", "--records", str(folder), "--reference-date", REFERENCE, "--out", str(out)]
            )
            duck = timed([sys.executable, "-c", DUCKDB_SCRIPT.format(here=str(HERE), folder=folder)])
            total, cpu, peak = validate[0] + screen[0], validate[1] + screen[1], max(validate[2], screen[2])
            label = f"{size} M"
            for step, (seconds, cpu_seconds, gib) in (
                (f"fdkit validate ({megabytes:,.0f} MB)", validate),
                ("fdkit screen", screen),
                ("fdkit validate + screen", (total, cpu, peak)),
                ("DuckDB read + rule (baseline)", duck),
            ):
                print(f"{label:>8}  {step:<30}{seconds:>8.1f}s{cpu_seconds:>9.1f}s{gib:>10.2f} GiB")
                label = ""
            target_seconds, target_gib = TARGETS.get(size, (float("inf"), float("inf")))
            met = total <= target_seconds and peak <= target_gib
            met_all &= met
            print(
                f"{'':>8}  target <= {target_seconds:.0f} s and <= {target_gib:.0f} GB: {'met' if met else 'NOT met'}; "
                f"fdkit / DuckDB time {total / duck[0]:.1f}x\n"
            )
    return 0 if met_all else 1


if __name__ == "__main__":
    sys.exit(main())
