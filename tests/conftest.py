"""Shared fixtures: small records folders written as text, exactly as a unit might send them."""

from __future__ import annotations

from pathlib import Path

import pytest

PERSONS = """\
person_id,date_of_birth,sex
P1,1990-05-01,M
P2,2001-11-21,F
P3,1985-01-30,
"""

EVENTS = """\
crime_id,person_id,offence_date,role,offence_code,knife,police_initiated
C1,P1,2020-03-01,suspect,8G,false,false
C1,P2,2020-03-01,victim,8G,true,false
C2,P2,2021-07-15,suspect,10D/1,false,true
C3,P3,2022-01-09,victim,34B,false,false
"""

ENGAGEMENT = """\
person_id,engaged
P1,true
P2,false
"""


@pytest.fixture
def make_folder(tmp_path):
    """Write a records folder; each file's text defaults to a small valid one.

    Pass ``None`` to leave a file out, or text (``str``) or ``bytes`` to write instead.
    ``engagement.csv`` is left out unless given.
    """

    def make(persons=PERSONS, events=EVENTS, engagement=None, name="records") -> Path:
        folder = tmp_path / name
        folder.mkdir()
        files = {"persons.csv": persons, "events.csv": events, "engagement.csv": engagement}
        for file, content in files.items():
            if isinstance(content, bytes):
                (folder / file).write_bytes(content)
            elif content is not None:
                (folder / file).write_text(content, encoding="utf-8", newline="")
        return folder

    return make
