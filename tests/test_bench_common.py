"""bench/common.py: the children's environment and the machine info (no timings here)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import common  # noqa: E402


def test_children_run_without_the_openblas_overrides(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    env, removed = common.child_env()
    assert removed == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1048576"}
    assert not set(common.BLAS_OVERRIDES) & set(env)
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"          # the parent keeps its own
    assert env["PYTHONPATH"].split(os.pathsep)[0] == common.ROOT


def test_machine_info_names_the_cpu_and_its_vector_extensions():
    info = common.machine_info({"OPENBLAS_CORETYPE": "Haswell"})
    assert info["cpu_model"] and info["cores"] >= 1
    assert all(f in common.VECTOR_FLAGS or f.startswith("avx512") for f in info["vector_extensions"])
    assert info["env_removed_in_children"] == {"OPENBLAS_CORETYPE": "Haswell"}


def test_engine_passthrough_only_where_charlstm_takes_one():
    import inspect
    from lstm_scratch import CharLSTM
    assert common.engine_kwargs(None) == {}
    if "engine" in inspect.signature(CharLSTM).parameters:
        assert common.engine_kwargs("reference") == {"engine": "reference"}
    else:
        with pytest.raises(SystemExit):
            common.engine_kwargs("reference")


def test_median_of_children_leaves_out_the_failed():
    runs = [dict(median_s=3.0), dict(error="timed out"), dict(median_s=1.0), dict(median_s=2.0)]
    assert common.median_of_children(runs) == dict(median=2.0, min=1.0, max=3.0, n=3)
    assert common.median_of_children([dict(error="x")]) is None
