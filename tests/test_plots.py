import json

import numpy as np
import pytest

from lstm_scratch import UserError
from lstm_scratch.plots import batch_tensor, load_metrics, plot_batch, plot_metrics

TEXT = "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind\n" * 3


@pytest.mark.parametrize("mode", ["window", "stream"])
def test_batch_tensor_is_the_one_hot_of_the_batch(mode):
    b = batch_tensor(TEXT, mode=mode, seq_len=10, batch_size=4, step=3, seed=0)
    B, T, V = b["onehot"].shape
    assert (B, T) == (4, 10) and V == len(set(TEXT)) == len(b["chars"])
    assert b["chars"] == sorted(set(TEXT))
    np.testing.assert_array_equal(b["onehot"].sum(axis=-1), 1.0)          # one hot per step
    np.testing.assert_array_equal(b["onehot"].argmax(axis=-1), b["inputs"])
    for row, ids, label in zip(b["onehot"], b["inputs"], b["input_text"]):
        assert "".join(b["chars"][k] for k in row.argmax(axis=-1)) == label
        assert label in TEXT
    if mode == "window":
        assert b["targets"].shape == (4,)
        for label, target in zip(b["input_text"], b["target_text"]):
            assert len(target) == 1 and label + target in TEXT              # the next char
    else:
        assert b["targets"].shape == (4, 10)
        for label, target in zip(b["input_text"], b["target_text"]):
            assert label[1:] == target[:-1]                                 # shifted by one


def write_metrics(folder, records):
    folder.mkdir(exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_load_metrics(tmp_path):
    write_metrics(tmp_path / "run", [
        dict(step=10, epoch=0.1, train_loss=3.0, val_loss=2.9, val_bpc=2.9 / np.log(2)),
        dict(step=20, epoch=0.2, train_loss=2.5, val_loss=None, val_bpc=None)])
    m = load_metrics(str(tmp_path / "run"))
    assert m["step"] == [10, 20] and m["train_loss"] == [3.0, 2.5] and m["val_loss"] == [2.9, None]


def test_load_metrics_errors(tmp_path):
    with pytest.raises(UserError, match="expected a run folder holding metrics.jsonl"):
        load_metrics(str(tmp_path))
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{oops\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2: not a JSON line"):
        load_metrics(str(tmp_path))
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1}\n\xff\xfe\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2: not a JSON line \(not UTF-8\)"):
        load_metrics(str(tmp_path))
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n[1, 2]\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2: not a JSON object"):
        load_metrics(str(tmp_path))


def test_pictures_are_written(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed: drawing skipped")
    write_metrics(tmp_path / "run", [dict(step=s, epoch=s / 100, train_loss=3 - s / 50,
                                          val_loss=3.1 - s / 50, val_bpc=1.0) for s in (10, 20, 30)])
    plot_metrics(str(tmp_path / "run"), str(tmp_path / "loss.png"))
    for mode in ("window", "stream"):
        plot_batch(batch_tensor(TEXT, mode, 10, 4), str(tmp_path / f"{mode}.png"))
    for name in ("loss.png", "window.png", "stream.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "matplotlib", None)      # import matplotlib now fails
    write_metrics(tmp_path / "run", [dict(step=1, epoch=0.1, train_loss=3.0)])
    with pytest.raises(UserError, match=r"plotting needs matplotlib.*pip install 'lstm-scratch\[plot\]'"):
        plot_metrics(str(tmp_path / "run"), str(tmp_path / "loss.png"))
