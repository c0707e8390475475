"""Hypothesis profiles: "ci" (default, a few minutes on 2 cores) and "thorough".

    HYPOTHESIS_PROFILE=thorough python -m pytest
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None, env=None):
    """``python -m lstm_scratch ARGS`` as a user types it (this tree's package first on the
    path), from ``cwd`` (default the repository root): the finished process."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               **(env or {}))
    return subprocess.run([sys.executable, "-m", "lstm_scratch", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=300)


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


# -- the GPU tests' device: the fake CuPy here, the real one on a GPU machine -------------
# LSTM_SCRATCH_CUPY_BRANCHES=gpu (bench/gpu_check.py sets it) runs them on the real CuPy.
ON_GPU = os.environ.get("LSTM_SCRATCH_CUPY_BRANCHES") == "gpu"


def device_tests_mark():
    """The skip of a file of device tests: no working GPU (on a GPU run), or no C++
    compiler for the fake CuPy's kernels (elsewhere)."""
    import fakecupy
    from lstm_scratch.backend import cupy_available
    if ON_GPU:
        ok, why = cupy_available()
        return pytest.mark.skipif(not ok, reason=why)
    return pytest.mark.skipif(fakecupy.CXX is None,
                              reason="no C++ compiler to build the CUDA kernels on the host")


fake_only = pytest.mark.skipif(ON_GPU, reason="checks the fake CuPy itself")


@pytest.fixture
def dev(monkeypatch):
    """The CuPy Backend: the fake ``cupy``/``cupyx`` in sys.modules for one test, or the
    real one on a GPU run."""
    import fakecupy
    from lstm_scratch.backend import Backend, get_backend
    if ON_GPU:
        return get_backend("cupy")
    cupy, cupyx = fakecupy.modules()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    return Backend("cupy", cupy)
