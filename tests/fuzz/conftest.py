"""Seeded randomness for the fuzz tests. CI runs a fixed seed (a failure is repeatable);
FUZZ_SEED=<n> runs another, FUZZ_SEED=random a fresh one. The seed is printed and named
in every failure message."""

from __future__ import annotations

import os
import random

import pytest

DEFAULT_SEED = 19


@pytest.fixture
def fuzz_seed() -> int:
    value = os.environ.get("FUZZ_SEED", "")
    if value == "random":
        seed = random.SystemRandom().randrange(2**32)
    else:
        seed = int(value) if value else DEFAULT_SEED
    print(f"fuzz seed: {seed} (repeat with FUZZ_SEED={seed})")
    return seed
