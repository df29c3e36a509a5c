"""Object ids: ten letters and digits from the OS's CSPRNG, each of the 62 equally likely."""
from __future__ import annotations

import collections
import string

from gateway.db import new_object_id, random_alnum

ALPHABET = set(string.ascii_letters + string.digits)


def test_object_ids_are_ten_letters_and_digits_and_do_not_repeat():
    ids = [new_object_id() for _ in range(20_000)]
    assert all(len(i) == 10 and set(i) <= ALPHABET for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_character_is_equally_likely():
    # 62,000 x 20 characters: each of the 62 expected 20,000 times (sd ~140). A byte taken modulo 62
    # without the redraw makes the first 8 characters ~25 % more likely (5/256 against 4/256).
    counts = collections.Counter("".join(random_alnum(20) for _ in range(62_000)))
    assert set(counts) == ALPHABET
    assert max(counts.values()) < 20_900 and min(counts.values()) > 19_100


def test_lengths_beyond_one_draw():
    assert [len(random_alnum(n)) for n in (0, 1, 24, 300)] == [0, 1, 24, 300]
