import json
import os
import stat

import numpy as np
import pytest

from lstm_scratch import UserError
from lstm_scratch.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from lstm_scratch.data import Vocab


def save_example(path, value=1.0):
    save_checkpoint(path, params={"W": np.full((2, 3), value, np.float32)},
                    vocab=Vocab.from_text("ab\n"), meta={"note": "hi", "big": 2**100},
                    optim_state={"lr": 0.5, "v.W": np.zeros((2, 3))},
                    carry=[(np.ones((1, 2)), np.zeros((1, 2)))])


def test_round_trip(tmp_path):
    path = str(tmp_path / "c.npz")
    save_example(path)
    saved = load_checkpoint(path)
    assert saved["meta"] == {"note": "hi", "big": 2**100}
    assert Vocab.from_codes(saved["vocab_codes"]).chars == ["\n", "a", "b"]
    np.testing.assert_array_equal(saved["params"]["W"], np.ones((2, 3), np.float32))
    assert saved["params"]["W"].dtype == np.float32
    assert float(saved["optim"]["lr"]) == 0.5
    np.testing.assert_array_equal(saved["carry"][0][0], np.ones((1, 2)))
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRUSR and mode & stat.S_IWUSR


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = str(tmp_path / "c.npz")
    save_example(path, value=1.0)

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_example(path, value=2.0)
    assert os.listdir(tmp_path) == ["c.npz"]               # the temp file was removed
    np.testing.assert_array_equal(load_checkpoint(path)["params"]["W"], 1.0)


def test_object_arrays_are_refused(tmp_path):
    path = str(tmp_path / "evil.npz")
    save_example(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["param/W"] = np.array([{"__reduce__": "os.system"}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(UserError, match="holds pickled objects; refusing to load it"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage, match", [
    (lambda a: a.update(magic=np.array("something else")), "not an lstm-scratch checkpoint"),
    (lambda a: a.update(format_version=np.array(FORMAT_VERSION + 1)), "format version"),
    (lambda a: a.update(gate_order=np.array("ifog")), "gate order ifog"),
    (lambda a: a.update(meta=np.array("{not json")), "damaged metadata"),
])
def test_damaged_checkpoints_are_one_line_errors(tmp_path, damage, match):
    path = str(tmp_path / "c.npz")
    save_example(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    damage(arrays)
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=match):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserError, match="expected a .npz file"):
        load_checkpoint(str(tmp_path / "notes.txt"))
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(UserError, match="not a readable .npz checkpoint"):
        load_checkpoint(str(tmp_path / "trunc.npz"))
    with pytest.raises(UserError, match="no such checkpoint"):
        load_checkpoint(str(tmp_path / "none.npz"))
    with pytest.raises(UserError, match="is a directory"):
        load_checkpoint(str(tmp_path))


def test_meta_is_plain_json(tmp_path):
    path = str(tmp_path / "c.npz")
    save_example(path)
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(str(npz["meta"]))["note"] == "hi"
        assert all(npz[k].dtype != object for k in npz.files)


def test_carry_without_c_round_trips(tmp_path):
    """A GRU's or RNN's carry is (h,) per layer: no c<l> is written, none comes back."""
    path = str(tmp_path / "g.npz")
    carry = [(np.full((1, 2), 1.0),), (np.full((1, 2), 2.0),)]
    save_checkpoint(path, params={}, vocab=Vocab.from_text("ab"), meta={}, carry=carry)
    saved = load_checkpoint(path)
    assert [len(layer) for layer in saved["carry"]] == [1, 1]
    np.testing.assert_array_equal(saved["carry"][1][0], carry[1][0])
