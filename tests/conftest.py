"""Hypothesis profiles: "ci" (default, a few minutes on 2 cores) and "thorough".

    HYPOTHESIS_PROFILE=thorough python -m pytest
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


WORDS = ["the", "king", "queen", "of", "and", "to", "my", "lord", "thou", "art", "good",
         "night", "sweet", "prince", "what", "is", "love"]


def make_text(n_lines=300, seed=0):
    """A small deterministic corpus of verse-like lines: words, punctuation, newlines."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n_lines):
        words = rng.choice(WORDS, size=rng.integers(3, 8))
        lines.append(" ".join(words).capitalize() + rng.choice([",", ".", "!", "?"]))
    return "\n".join(lines) + "\n"


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(make_text(), encoding="utf-8")
    return path
