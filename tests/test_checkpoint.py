import io
import json
import os
import stat
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given
from numpy.lib import format as npy_format

from lstm_scratch import CharLSTM, CharRNN, RMSprop, UserError
from lstm_scratch.regularisers import REGULARISERS
from lstm_scratch.checkpoint import (FORMAT_VERSION, MODEL_KEYS, load_checkpoint, param_shapes,
                                     save_checkpoint)
from lstm_scratch.data import Vocab
from strategies import seeds


def save_example(path, value=1.0):
    """A checkpoint of a real (tiny) model: V = 3, H = 2, L = 1, batch 1."""
    model = CharLSTM(3, 2, 1)
    params = {k: np.full(p.shape, value, p.dtype) for k, p in model.params.items()}
    optim = RMSprop(params).state_dict()
    optim["lr"] = 0.5
    save_checkpoint(path, params=params, vocab=Vocab.from_text("ab\n"),
                    meta={"model": model.config, "train": {"batch_size": 1}, "big": 2**100},
                    optim_state=optim, carry=[(np.ones((1, 2), np.float32),
                                               np.zeros((1, 2), np.float32))])


def test_round_trip(tmp_path):
    path = str(tmp_path / "c.npz")
    save_example(path)
    saved = load_checkpoint(path)
    assert saved["meta"]["big"] == 2**100 and saved["meta"]["model"]["vocab_size"] == 3
    assert Vocab.from_codes(saved["vocab_codes"]).chars == ["\n", "a", "b"]
    np.testing.assert_array_equal(saved["params"]["Wx0"], np.ones((3, 8), np.float32))
    assert saved["params"]["Wx0"].dtype == np.float32
    assert set(saved["params"]) == {"Wx0", "Wh0", "b0", "Wy", "by"}
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
    np.testing.assert_array_equal(load_checkpoint(path)["params"]["Wx0"], 1.0)


def test_object_arrays_are_refused(tmp_path):
    path = str(tmp_path / "evil.npz")
    save_example(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["param/Wx0"] = np.array([{"__reduce__": "os.system"}], dtype=object)
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
        assert json.loads(str(npz["meta"]))["big"] == 2**100
        assert all(npz[k].dtype != object for k in npz.files)


# -- hostile files: checked before read, refused in one line -----------------------

def members_of(path):
    """name -> raw bytes of every member of a zip (our own file: trusted)."""
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def write_zip(path, members, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)


def npy_bytes(array=None, header=None, data=b""):
    """A .npy member: ``array`` as np.save writes it, or a raw ``header`` dict and data."""
    buf = io.BytesIO()
    if array is not None:
        np.save(buf, array)
    else:
        npy_format.write_array_header_1_0(buf, header)
        buf.write(data)
    return buf.getvalue()


@pytest.fixture
def good(tmp_path):
    path = str(tmp_path / "good.npz")
    save_example(path)
    return path


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_param_shapes_are_the_models(cell):
    for V, H, L in ((3, 2, 1), (65, 16, 3)):
        model = CharRNN(V, cell=cell, hidden_size=H, num_layers=L)
        assert param_shapes(model.config) == {k: p.shape for k, p in model.params.items()}
        assert set(model.config) == set(MODEL_KEYS) | {"cell"} | set(REGULARISERS)


def test_a_header_claiming_2_36_floats_is_refused_before_any_allocation(good):
    # np.load allocated 256 GiB for this (ArrayMemoryError, a 28-line traceback)
    members = members_of(good)
    members["param/Wx0.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                                 "shape": (2**36,)}, data=b"\0" * 64)
    write_zip(good, members)
    with pytest.raises(UserError, match=r"member 'param/Wx0': shape \(68719476736,\), "
                                        r"expected \(3, 8\)"):
        load_checkpoint(good)


def test_a_header_length_of_2_gib_is_refused_before_it_is_read(good):
    members = members_of(good)
    members["param/Wx0.npy"] = b"\x93NUMPY\x02\x00" + (2**31).to_bytes(4, "little") + b"{"
    write_zip(good, members)
    with pytest.raises(UserError, match=r"'param/Wx0': .npy header of 2,147,483,648 bytes, "
                                        r"at most 10,000 expected"):
        load_checkpoint(good)


def test_a_member_whose_data_is_shorter_than_its_header_says(good):
    members = members_of(good)
    members["param/Wh0.npy"] = members["param/Wh0.npy"][:-4]        # one float short
    write_zip(good, members)
    with pytest.raises(UserError, match=r"member 'param/Wh0': its header says <f4 \(2, 8\) "
                                        r"\(64 bytes of data\) but the archive holds 60"):
        load_checkpoint(good)


def test_an_unknown_member_is_never_read(good):
    # 64 MiB of zeros that deflate to 64 KiB: np.load inflated every member it held
    members = members_of(good)
    members["junk.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                            "shape": (2**24,)}, data=bytes(2**26))
    members["param/junk.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                                  "shape": (2**36,)}, data=b"")
    write_zip(good, members, zipfile.ZIP_DEFLATED)
    del members
    assert os.path.getsize(good) < 2**20
    tracemalloc.start()
    try:
        saved = load_checkpoint(good)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20                                     # the model here is a few hundred bytes
    assert set(saved["params"]) == {"Wx0", "Wh0", "b0", "Wy", "by"}


@pytest.mark.parametrize("member, array, match", [
    ("param/Wx0.npy", np.ones((3, 8)), r"'param/Wx0': dtype <f8, expected floats of 4 bytes"),
    ("param/Wh0.npy", np.ones((2, 7), np.float32), r"'param/Wh0': shape \(2, 7\), expected \(2, 8\)"),
    ("vocab.npy", np.array(["a", "b", "c"]), r"'vocab': dtype <U1, expected integers"),
    ("vocab.npy", np.array([10, 97, 0x110000]), r"'vocab': expected increasing Unicode code"),
    ("vocab.npy", np.array([10, 97, 0xD800]), r"'vocab': expected increasing Unicode code"),
    ("vocab.npy", np.array([10, 98, 97]), r"'vocab': expected increasing Unicode code"),
    ("carry/h0.npy", np.ones((2, 2), np.float32), r"'carry/h0': shape \(2, 2\), expected \(1, 2\)"),
    ("optim/lr.npy", np.ones(3), r"'optim/lr': shape \(3,\), expected \(\)"),
    ("meta.npy", np.array("x" * 300_000), r"'meta': is 1,200,\d+ bytes, at most 1,048,576"),
    ("meta.npy", np.array('{"model": {"vocab_size": 3, "hidden_size": -2, "num_layers": 1, '
                          '"dropout": 0, "dtype": "float32"}, "train": {}}'),
     r"model hidden_size is -2"),
    ("vocab.npy", np.array([{"__reduce__": 1}], dtype=object), "holds pickled objects; refusing"),
    ("meta.npy", np.array('{"model": {"vocab_size": 3, "hidden_size": 2, "num_layers": '
                          '1099511627776, "dropout": 0, "dtype": "float32"}, "train": {}}'),
     r"a model of 1099511627776 layers, but the file holds 23 arrays"),
    ("meta.npy", np.array('{"model": {"vocab_size": 3, "hidden_size": 2, "num_layers": 1, '
                          '"dropout": "x", "dtype": "float32"}, "train": {}}'),
     r"model dropout is 'x'"),
    ("meta.npy", np.array('{"model": {"vocab_size": 3, "hidden_size": 2, "num_layers": 1, '
                          '"dropout": 0, "dtype": "float32", "backend": "x"}, "train": {}}'),
     r"model config has backend, dropout, dtype, .*; expected vocab_size"),
])
def test_members_that_do_not_fit_the_model_are_one_line_errors(good, member, array, match):
    members = members_of(good)
    members[member] = npy_bytes(array)
    write_zip(good, members)
    with pytest.raises(UserError, match=match) as info:
        load_checkpoint(good)
    assert "\n" not in str(info.value) and good in str(info.value)


@pytest.mark.parametrize("missing", ["param/by.npy", "optim/v.Wh0.npy", "optim/clip_norm.npy",
                                     "carry/c0.npy", "vocab.npy"])
def test_a_missing_member_is_a_one_line_error(good, missing):
    members = members_of(good)
    del members[missing]
    write_zip(good, members)
    with pytest.raises(UserError, match=f"lacks member '{missing[:-4]}'"):
        load_checkpoint(good)


def test_a_truncated_file_is_a_one_line_error(good):
    data = open(good, "rb").read()
    for cut in (len(data) // 2, len(data) - 30):
        with open(good, "wb") as f:
            f.write(data[:cut])
        with pytest.raises(UserError, match="not a readable .npz checkpoint"):
            load_checkpoint(good)


def test_damaged_compressed_data_is_a_one_line_error(good):
    members = members_of(good)
    write_zip(good, members, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("param/Wh0.npy")
    data = bytearray(open(good, "rb").read())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size - 3] ^= 0xFF               # the data's end: the header reads
    open(good, "wb").write(bytes(data))
    with pytest.raises(UserError, match="member 'param/Wh0': (damaged data|not a readable)"):
        load_checkpoint(good)


def test_an_unsupported_compression_method_is_a_one_line_error(good):
    data = bytearray(open(good, "rb").read())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("param/Wh0.npy")
    data[info.header_offset + 8:info.header_offset + 10] = (99).to_bytes(2, "little")  # local
    central = data.index(b"PK\1\2")
    while not data[central + 46:].startswith(b"param/Wh0.npy"):
        central = data.index(b"PK\1\2", central + 4)
    data[central + 10:central + 12] = (99).to_bytes(2, "little")                         # central
    open(good, "wb").write(bytes(data))
    with pytest.raises(UserError, match="member 'param/Wh0': not a readable .npy array "
                                        r"\(That compression method is not supported\)"):
        load_checkpoint(good)


def test_a_deflated_member_claiming_more_than_deflate_can_expand_is_refused(tmp_path):
    # A consistent .npy header for 128 MiB of floats, a directory that agrees, and a
    # deflated stream of a few hundred bytes: without the bound we would allocate 128 MiB.
    from lstm_scratch.safe_npz import SafeNpz
    claimed = 2**25
    member = npy_bytes(header={"descr": "<f4", "fortran_order": False, "shape": (claimed,)},
                       data=bytes(4096))
    path = str(tmp_path / "bomb.npz")
    write_zip(path, {"a.npy": member}, zipfile.ZIP_DEFLATED)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("a.npy")
    header_len = len(member) - 4096
    real, lie = len(member), header_len + 4 * claimed
    data = bytearray(open(path, "rb").read())
    local = info.header_offset
    assert data[local + 22:local + 26] == real.to_bytes(4, "little")
    data[local + 22:local + 26] = lie.to_bytes(4, "little")               # local header
    central = data.index(b"PK\1\2")
    assert data[central + 24:central + 28] == real.to_bytes(4, "little")
    data[central + 24:central + 28] = lie.to_bytes(4, "little")           # central directory
    open(path, "wb").write(bytes(data))
    with SafeNpz(path) as npz:
        header = npz.header("a")
        assert header.shape == (claimed,) and npz.size("a") == lie      # everything else agrees
        with pytest.raises(UserError, match=r"member 'a': claims 134,217,856 bytes inflated "
                                            r"from \d+, more than deflate can expand"):
            npz.read("a", header)


def test_zeros_deflated_near_the_bound_still_load(tmp_path):
    # deflate's best case, a long run of zeros (about 1030:1), is inside the bound
    from lstm_scratch.safe_npz import SafeNpz
    path = str(tmp_path / "zeros.npz")
    np.savez_compressed(path, a=np.zeros(2**22, np.float32))
    with SafeNpz(path) as npz:
        info = npz._members["a"]
        assert info.file_size > 1000 * info.compress_size
        assert not npz.read("a", npz.header("a")).any()


def test_a_model_too_big_for_this_machine_is_a_one_line_error(good, monkeypatch):
    # a config in meta may claim a huge model, with members whose sizes agree
    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(np, "empty", no_memory)
    with pytest.raises(UserError, match="member 'magic': needs 92 bytes, more than this "
                                        "machine can allocate"):
        load_checkpoint(good)


def test_stored_data_must_be_in_the_file(good):
    members = members_of(good)
    write_zip(good, members)
    data = bytearray(open(good, "rb").read())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("param/Wx0.npy")
    central = data.index(b"PK\1\2")
    while not data[central + 46:].startswith(b"param/Wx0.npy"):
        central = data.index(b"PK\1\2", central + 4)
    data[central + 20:central + 24] = (info.compress_size - 8).to_bytes(4, "little")
    open(good, "wb").write(bytes(data))
    with pytest.raises(UserError, match="member 'param/Wx0': (its header says|not a readable)"):
        load_checkpoint(good)


@given(seeds)
def test_every_corruption_is_refused_in_one_line_or_loads(seed):
    # random bytes changed, and sometimes the end cut off: the loader says so in one
    # line (or, when the change missed everything it reads, loads); never a traceback
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.npz")
        save_example(path)
        good = open(path, "rb").read()
        for _ in range(50):
            data = bytearray(good)
            for k in rng.integers(0, len(data), rng.integers(1, 9)):
                data[k] = rng.integers(0, 256)
            if rng.random() < 0.1:
                data = data[:rng.integers(0, len(data))]
            with open(path, "wb") as f:
                f.write(bytes(data))
            try:
                load_checkpoint(path)
            except UserError as exc:
                assert "\n" not in str(exc) and path in str(exc)


def test_carry_without_c_round_trips(tmp_path):
    """A GRU's or RNN's carry is (h,) per layer: no c<l> is written, none comes back."""
    path = str(tmp_path / "g.npz")
    model = CharRNN(2, cell="gru", hidden_size=2, num_layers=2)
    carry = [(np.full((1, 2), 1.0, np.float32),), (np.full((1, 2), 2.0, np.float32),)]
    save_checkpoint(path, params=model.params, vocab=Vocab.from_text("ab"),
                    meta={"model": model.config, "train": {"batch_size": 1}}, carry=carry)
    saved = load_checkpoint(path)
    assert [len(layer) for layer in saved["carry"]] == [1, 1]
    np.testing.assert_array_equal(saved["carry"][1][0], carry[1][0])
