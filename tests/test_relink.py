"""Re-linking pseudonyms to the unit's real IDs: padded IDs are found, nothing silently lost."""

from __future__ import annotations

import pandas as pd
import pytest

from fdkit import FdkitDataError, privacy
from fdkit.cli import main

KEY = b"9f2c4e7a1b8d3f60c5a2e9174b3d8f06a1c7e25b9d4f8036e2a7c1b5d9f3e804"  # a fixed random key


def _allocation(ids):
    return pd.DataFrame({"person_id": privacy.pseudonym(pd.Series(ids), KEY, "P"), "arm": "treatment"})


def test_a_padded_id_in_the_unit_list_is_found():
    # The guide's old snippet hashed 'N2 ' as it stood and left the treated person as NaN.
    allocation = _allocation(["N1", "N2"])
    linked = privacy.relink(allocation, pd.Series(["N1", "N2 ", " N3", "N2"]), KEY)
    assert linked["real_id"].tolist() == ["N1", "N2"]
    assert list(linked.columns) == ["person_id", "real_id", "arm"]


def test_a_pseudonym_no_id_makes_is_an_error_not_a_blank():
    allocation = _allocation(["N1", "N9"])
    with pytest.raises(FdkitDataError, match="1 pseudonyms match none of the IDs given"):
        privacy.relink(allocation, pd.Series(["N1", "N2"]), KEY)


def test_the_wrong_key_is_an_error():
    with pytest.raises(FdkitDataError, match="match none"):
        privacy.relink(_allocation(["N1"]), pd.Series(["N1"]), b"x" * 32)


def test_pseudonymise_relink_on_the_command_line(tmp_path, capsys):
    key = tmp_path / "unit.key"
    key.write_text(KEY.decode())
    key.chmod(0o600)  # key files must be private (fdkit refuses others')
    _allocation(["N1", "N2"]).to_csv(tmp_path / "allocation.csv", index=False)
    (tmp_path / "nominals.csv").write_text("Nominal ID,Surname\nN1 ,Smith\n N2,Jones\nN3,Brown\n")
    out = tmp_path / "case_list.csv"
    args = ["pseudonymise", "--relink", str(tmp_path / "allocation.csv"), "--ids", str(tmp_path / "nominals.csv")]
    assert main([*args, "--id-column", "Nominal ID", "--key-file", str(key), "--out", str(out)]) == 0
    assert pd.read_csv(out)["real_id"].tolist() == ["N1", "N2"]
    assert "Smith" not in out.read_text()
    assert main([*args, "--id-column", "Nominal ID", "--key-file", str(key), "--out", str(out)]) == 2
    assert "never replaced" in capsys.readouterr().err
