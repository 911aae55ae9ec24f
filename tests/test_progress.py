"""Progress on stderr: shown when stderr is a terminal (a pseudo-terminal here), silent in a pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from fdkit import progress

ROOT = Path(__file__).resolve().parents[1]
VALIDATE = [sys.executable, "-m", "fdkit.cli", "validate", str(ROOT / "synthetic")]


def run_with_terminal_stderr(command: list[str]) -> tuple[int, str, str]:
    """Run a command with stderr on a pseudo-terminal; return exit code, stdout and what the terminal got."""
    controller, terminal = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, where a bar has no room; give it a real size.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=terminal, cwd=ROOT)
    os.close(terminal)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the terminal closes when the command ends
            break
        if not chunk:
            break
        seen += chunk
    stdout = process.stdout.read().decode()
    process.stdout.close()
    process.wait()
    os.close(controller)
    return process.returncode, stdout, seen.decode(errors="replace")


def test_validate_shows_progress_on_a_terminal():
    code, stdout, terminal = run_with_terminal_stderr(VALIDATE)
    assert code == 0
    assert "fdkit validate" in terminal
    assert "reading events.csv" in terminal
    assert stdout.startswith("Records in")


def test_validate_is_quiet_in_a_pipe_and_prints_the_same():
    done = subprocess.run(VALIDATE, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0
    assert done.stderr == ""
    _, stdout, _ = run_with_terminal_stderr(VALIDATE)
    assert done.stdout == stdout


def test_data_errors_still_print_after_the_bar(tmp_path):
    (tmp_path / "persons.csv").write_text("person_id,date_of_birth,sex\nP1,1990-05-01,Q\n")
    (tmp_path / "events.csv").write_text("crime_id,person_id,offence_date,role,offence_code,knife,police_initiated\n")
    code, _, terminal = run_with_terminal_stderr([*VALIDATE[:-1], str(tmp_path)])
    assert code == 1
    assert "values not allowed: 'Q'" in terminal


def test_bar_is_disabled_without_a_terminal(capsys):
    with progress.bar(3, "working") as shown:
        step = progress.stepper(shown)
        step("first")
        step("second")
        assert shown.disable
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("steps", [1, 3])
def test_stepper_counts_finished_steps(monkeypatch, steps):
    monkeypatch.setattr(progress, "shown", lambda: True)
    with progress.bar(steps, "working") as shown:
        step = progress.stepper(shown)
        for number in range(steps):
            step(f"step {number}")
        assert shown.n == steps - 1  # the last step is still running
