"""The output guard and atomic writes (fdkit/files.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from fdkit.files import OutputFailed, OutputGuard, OutputRefused, atomic_write, formula_cells
from fdkit.records import FdkitDataError


def test_refuses_an_input_even_through_a_symlink_or_relative_path(tmp_path, monkeypatch):
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    (tmp_path / "link.csv").symlink_to(data)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    guard = OutputGuard(inputs=[data], force=True)
    os.link(data, tmp_path / "hard.csv")
    for spelling in ("../data.csv", "../link.csv", str(data), "../sub/../data.csv", "../hard.csv"):
        with pytest.raises(OutputRefused, match="input"):
            guard.claim(spelling)
    assert data.read_text() == "x\n1\n"


def test_refuses_anything_inside_an_input_folder_and_any_records_folder(tmp_path):
    records = tmp_path / "rec"
    records.mkdir()
    (records / "persons.csv").write_text("person_id\nA\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "events.csv").write_text("crime_id\n")
    guard = OutputGuard(input_folders=[records], force=True)
    with pytest.raises(OutputRefused, match="reads"):
        guard.claim(records / "new.csv")
    with pytest.raises(OutputRefused, match="records folder"):
        guard.claim(other / "results.csv")
    assert guard.claim(tmp_path / "results.csv") == tmp_path / "results.csv"


def test_refuses_allocation_seal_and_fingerprinted_eligible_list(tmp_path):
    import hashlib

    (tmp_path / "allocation.csv").write_text("person_id,arm\nA,control\n")
    eligible = tmp_path / "eligible.csv"
    eligible.write_text("person_id,age_band\nB,11-17\nA,18-25\n")
    other_list = tmp_path / "other.csv"
    other_list.write_text("person_id\nZ\n")
    fingerprint = hashlib.sha256(b"A\nB\n").hexdigest()
    (tmp_path / "allocation.seal.json").write_text(json.dumps({"waves": [{"eligible_ids_sha256": fingerprint}]}))
    guard = OutputGuard(force=True)
    with pytest.raises(OutputRefused, match="sealed allocation"):
        guard.claim(tmp_path / "allocation.csv")
    with pytest.raises(OutputRefused, match="seal"):
        guard.claim(tmp_path / "allocation.seal.json")
    with pytest.raises(OutputRefused, match="fingerprints"):
        guard.claim(eligible)
    assert guard.claim(other_list) == other_list  # an unsealed list may be replaced with force


def test_refuses_the_same_path_twice_existing_files_without_force_and_folders(tmp_path):
    guard = OutputGuard()
    guard.claim(tmp_path / "a.csv")
    with pytest.raises(OutputRefused, match="two outputs"):
        guard.claim(tmp_path / "sub" / ".." / "a.csv")
    (tmp_path / "old.csv").write_text("x\n")
    with pytest.raises(OutputRefused, match="--force"):
        guard.claim(tmp_path / "old.csv")
    with pytest.raises(OutputRefused, match="never replaced"):
        OutputGuard(force=True).claim(tmp_path / "old.csv", replaceable=False)
    with pytest.raises(OutputRefused, match="folder"):
        guard.claim(tmp_path)
    with pytest.raises(OutputRefused, match="is a file"):
        guard.claim(tmp_path / "old.csv" / "x.csv")
    assert OutputGuard(force=True).claim(tmp_path / "old.csv") == tmp_path / "old.csv"
    if os.path.exists("/dev/full"):
        with pytest.raises(OutputRefused, match="regular file"):
            OutputGuard(force=True).claim("/dev/full")


def test_writes_create_missing_folders_and_leave_no_temporary_files(tmp_path):
    guard = OutputGuard()
    frame = pd.DataFrame({"a": ["x", "y"], "b": [-0.5, 2.0]})
    path = tmp_path / "new" / "deeper" / "t.csv"
    guard.write_csv(frame, path)
    assert path.read_text() == "a,b\nx,-0.5\ny,2.0\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["t.csv"]
    guard.write_text("hello\n", tmp_path / "h.txt")
    assert (tmp_path / "h.txt").read_text() == "hello\n"


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("old\n")

    def half_then_fail(handle):
        handle.write("new, half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_a_clear_error_not_a_traceback(tmp_path):
    def to_full_disk(handle):
        with open("/dev/full", "w") as full:
            full.write("x" * 100_000)
            full.flush()

    with pytest.raises(OutputFailed, match="could not write"):
        atomic_write(tmp_path / "t.csv", to_full_disk)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="POSIX permissions, not as root")
def test_a_read_only_folder_is_a_clear_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputFailed, match="locked"):
            OutputGuard().write_text("x", locked / "t.txt")
    finally:
        locked.chmod(0o700)


def test_a_killed_write_leaves_the_old_file_whole(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("old\n")
    script = textwrap.dedent(
        f"""
        import os, signal
        from fdkit.files import atomic_write
        def write(handle):
            for i in range(20000):
                handle.write("row,%d\\n" % i)
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_write({str(path)!r}, write)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert result.returncode != 0
    assert path.read_text() == "old\n"  # the partial temporary file never took its name


def test_staged_folder_appears_whole_or_not_at_all(tmp_path):
    guard = OutputGuard()
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with guard.staged_folder(target) as staging:
            (staging / "persons.csv").write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    with OutputGuard().staged_folder(target) as staging:
        (staging / "a.csv").write_text("a\n")
    assert (target / "a.csv").read_text() == "a\n"


def test_staged_folder_refuses_occupied_sealed_and_input_folders(tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "engagement.csv").write_text("keep me")
    with pytest.raises(OutputRefused, match="already holds files"):
        with OutputGuard().staged_folder(occupied):
            pass
    assert (occupied / "engagement.csv").read_text() == "keep me"
    (occupied / "allocation.seal.json").write_text("{}")
    with pytest.raises(OutputRefused, match="sealed allocation"):
        with OutputGuard(force=True).staged_folder(occupied):
            pass
    raw = tmp_path / "raw"
    raw.mkdir()
    for out in (raw, raw / "inside", tmp_path):
        with pytest.raises(OutputRefused, match="reads"):
            with OutputGuard(input_folders=[raw]).staged_folder(out):
                pass
    (occupied / "allocation.seal.json").unlink()
    with pytest.raises(OutputRefused, match="did not write"):  # --force never deletes other files
        with OutputGuard(force=True).staged_folder(occupied, own_names=("new.csv",)):
            pass
    with OutputGuard(force=True).staged_folder(occupied, own_names=("engagement.csv", "new.csv")) as staging:
        (staging / "new.csv").write_text("new")
    assert [p.name for p in occupied.iterdir()] == ["new.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied", "raw"]


def test_formula_cells_are_found_in_text_but_not_in_numbers():
    frame = pd.DataFrame(
        {
            "id": ["A", "=HYPERLINK(1)", "+cmd|x", "@SUM(1)", "-2+3", "\tx", "\rx", "ok-"],
            "n": [-1.0, 2, 3, 4, 5, 6, 7, 8],
        }
    )
    assert {k: v.tolist() for k, v in formula_cells(frame).items()} == {"id": [1, 2, 3, 4, 5, 6]}
    with pytest.raises(FdkitDataError, match="formula injection"):
        OutputGuard().write_csv(frame, "never-written.csv")
    assert not os.path.exists("never-written.csv")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.0, 2.0, 3.0, 4.0])
def test_pseudonymise_killed_at_any_moment_leaves_nothing_or_everything(tmp_path, delay):
    import signal
    import time
    from pathlib import Path

    from fdkit import privacy
    from fdkit.records import load_records

    shipped = Path(__file__).resolve().parents[1] / "synthetic"
    key = privacy.new_key(tmp_path / "unit.key")
    out = tmp_path / "safe"
    command = [sys.executable, "-m", "fdkit.cli", "pseudonymise", "--records", str(shipped), "--out", str(out)]
    process = subprocess.Popen([*command, "--key-file", str(key)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if out.exists():  # the run finished before the kill: then the folder must be whole
        written = load_records(out)
        original = load_records(shipped)
        assert (len(written.persons), len(written.events)) == (len(original.persons), len(original.events))
    assert [p.name for p in tmp_path.iterdir() if p.name != ".safe" and not p.name.startswith(".safe.staging-")] in (
        ["unit.key"],
        ["unit.key", "safe"],
        ["safe", "unit.key"],
    )
