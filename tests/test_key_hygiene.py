"""Key hygiene for pseudonymisation: strong keys pass, guessable keys and exposed key files do not."""

from __future__ import annotations

import base64
import itertools
import os
import random
import secrets
import string

import pytest

from fdkit import privacy
from fdkit.records import FdkitDataError


def weak_keys() -> list[str]:
    """Keys people actually choose: repeats, sequences, words, walks, padded phrases (> 68 of them)."""
    keys = [c * 32 for c in string.ascii_letters[:20] + string.digits]
    keys += [(string.ascii_lowercase + string.digits)[i : i + 32] for i in range(5)]
    keys += [(string.digits * 4)[:32], (string.digits[::-1] * 4)[:32], "0123456789abcdef" * 2, "abcd" * 8]
    for word in ("password", "secret", "police", "letmein", "welcome", "changeme", "monkey", "dragon", "thames"):
        keys += [(word * 8)[:32], (word.capitalize() + "123!") * 4, word + "1" * 32]
    keys += ["qwertyuiopasdfghjklzxcvbnm123456", "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,", "abc123xyz!" * 4]
    keys += ["ab" * 20, "xyz" * 12, "fdkit-fdkit-fdkit-fdkit-fdkit-fd", "MiltonKeynesKnifeCrime2023!!!!!!"]
    return keys


def write(tmp_path, content, mode=0o600, name="k"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    path.chmod(mode)
    return path


def test_more_than_68_guessable_keys_are_all_refused(tmp_path):
    keys = weak_keys()
    assert len(keys) > 68
    accepted = []
    for number, key in enumerate(keys):
        try:
            privacy.read_key(write(tmp_path, key, name=f"k{number}"))
            accepted.append(key)
        except FdkitDataError as error:
            assert "too easy to guess" in str(error) or "long" in str(error)
    assert accepted == []


def test_random_keys_are_not_refused(tmp_path):
    # 400 seeded keys of each kind the kit suggests: none refused. (Of 20,000 unseeded random
    # 32-character hexadecimal keys, the shortest accepted, about 0.2% are refused: at exactly
    # 128 bits, a few chance runs take them under; --new-key writes 64 characters.)
    generator = random.Random(20231)
    for number in range(400):
        raw = generator.randbytes(32)
        for kind, key in (
            ("hex", raw.hex()),
            ("short hex", generator.randbytes(16).hex()),
            ("base64", base64.urlsafe_b64encode(raw).decode().rstrip("=")),
            ("bytes", raw),
        ):
            assert privacy.read_key(write(tmp_path, key, name=f"{kind}{number}")), kind


def test_new_key_is_accepted_and_private(tmp_path):
    path = privacy.new_key(tmp_path / "unit.key")
    assert path.stat().st_mode & 0o077 == 0
    assert len(privacy.read_key(path)) == 64


def test_binary_keys_are_read_as_bytes(tmp_path):
    raw = bytes(range(256))[::8] + b"\xff\xfe\n"  # not UTF-8, ends in a newline byte that is part of the key
    assert privacy.read_key(write(tmp_path, raw)) == raw


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666])
def test_key_files_others_can_read_are_refused_unless_asked(tmp_path, mode):
    path = write(tmp_path, secrets.token_hex(32), mode=mode)
    with pytest.raises(FdkitDataError, match="chmod 600"):
        privacy.read_key(path)
    assert privacy.read_key(path, allow_insecure_file=True)


def test_strength_estimate_orders_keys_sensibly():
    bits = {key: privacy.key_strength(key.encode())[0] for key in ("a" * 32, "abc123xyz!" * 4, secrets.token_hex(32))}
    values = list(bits.values())
    assert values[0] < values[1] < privacy.MIN_KEY_BITS <= values[2]


def test_the_key_never_appears_in_the_pseudonymised_records(make_folder):
    from fdkit.records import load_records

    key = secrets.token_hex(32).encode()
    safe = privacy.pseudonymise(load_records(make_folder()), key)
    text = "".join(frame.to_csv() for frame in (safe.persons, safe.events))
    assert all(part.decode() not in text for part in itertools.islice((key[i : i + 12] for i in range(0, 52, 4)), 10))
