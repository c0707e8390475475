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


def test_gpu_summary_keeps_every_section_and_names_the_commit(tmp_path, monkeypatch):
    path = str(tmp_path / "gpu_summary.json")
    common.update_gpu_summary("train", {"C2": {"tf32_off": 1.1, "tf32_on": 0.9}}, path)
    common.update_gpu_summary("sample", {"ours_chars_per_s": 5.0}, path)
    import json
    data = json.load(open(path))
    assert data["train"]["C2"]["tf32_on"] == 0.9 and data["sample"]["ours_chars_per_s"] == 5.0
    assert data["commit"] == common.tree_commit() != ""
    monkeypatch.setattr(common.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(OSError))
    monkeypatch.setenv("LSTM_SCRATCH_COMMIT", "abc123")         # a copy of the tree, no .git
    assert common.tree_commit() == "abc123"


def test_sample_summary_reads_the_gpu_rows():
    import sample_speed as s
    rate = lambda r: dict(chars_per_s=r, run_s=1.0 / r)
    rows = {s.OURS[0]: rate(30000.0), s.TORCH[0]: rate(2400.0), s.TORCH[1]: rate(900.0),
            s.TORCH[2]: None, s.TORCH_GPU[0]: rate(9000.0), s.OURS_GPU[1]: rate(7000.0),
            s.OURS_GPU[0]: rate(3000.0), s.OURS_GPU[2]: dict(chars_per_s=64e4, run_s=0.05)}
    assert s.sample_summary(rows) == dict(
        ours_chars_per_s=30000.0, torch_best_chars_per_s=2400.0, torch_graph_chars_per_s=9000.0,
        ours_cpu_chars_per_s=7000.0, ours_host_draws_chars_per_s=3000.0, ours_64x500_s=0.05)
