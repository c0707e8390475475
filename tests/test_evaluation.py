"""evaluate_windows: nanoGPT's protocol, non-overlapping windows each from a zero state."""
import numpy as np
import pytest

from lstm_scratch.data import StreamBatches
from lstm_scratch.engine.parallel import ThreadedDataParallel
from lstm_scratch.errors import UserError
from lstm_scratch.evaluation import evaluate_windows, evaluate_windows_threaded
from lstm_scratch.model import CharLSTM
from lstm_scratch.train import evaluate

V, W = 7, 8


def tiny_model(state_gain=1.0):
    """A 1-layer float64 LSTM; ``state_gain`` scales Wh, and so how much the state matters."""
    model = CharLSTM(V, hidden_size=8, num_layers=1, dtype="float64", seed=3)
    model.params["Wh0"] *= state_gain
    model.params["b0"] += np.random.default_rng(1).normal(0, 0.5, model.params["b0"].shape)
    return model


def random_ids(n, seed=0):
    return np.random.default_rng(seed).integers(0, V, n).astype(np.int32)


# n = 5 W + extra: extra 1 is exactly 5 windows (no tail); 2 and W leave a tail of 1
# and W - 1 unscored chars; W + 1 is a sixth window; 0 is one char short of the fifth.
@pytest.mark.parametrize("extra, n_windows", [(0, 4), (1, 5), (2, 5), (W, 5), (W + 1, 6)])
def test_is_the_mean_over_windows_each_scored_alone(extra, n_windows):
    model, ids = tiny_model(), random_ids(5 * W + extra)
    by_hand, k = [], 0
    while k * W + W + 1 <= len(ids):                    # window k: W inputs and the char after
        inputs, targets = ids[k * W:k * W + W], ids[k * W + 1:k * W + W + 1]
        by_hand.append(model.loss(inputs[None], targets[None], None)[0])
        k += 1
    assert len(by_hand) == n_windows
    loss, targets = evaluate_windows(model, ids, window=W, batch_size=3)
    assert targets == n_windows * W
    assert loss == pytest.approx(np.mean(by_hand), rel=1e-12)


def test_each_window_starts_from_a_zero_state_not_the_streams():
    """On 5 W + 1 ids, one stream cut into W-char chunks scores the very same targets,
    with the state carried from chunk to chunk: only the state differs. (One window a
    batch: the case where a state could be carried from one window to the next.)"""
    model, ids = tiny_model(state_gain=4.0), random_ids(5 * W + 1)
    stream = evaluate(model, StreamBatches(ids, seq_len=W, batch_size=1))
    windows, targets = evaluate_windows(model, ids, window=W, batch_size=1)
    assert targets == StreamBatches(ids, seq_len=W, batch_size=1).targets_per_epoch()
    assert abs(windows - stream) > 1e-3, (windows, stream)


@pytest.mark.parametrize("batch_size", [1, 2, 5, 64])
def test_batch_size_and_threads_do_not_change_the_result(batch_size):
    model, ids = tiny_model(), random_ids(11 * W + 3)
    one_by_one = evaluate_windows(model, ids, window=W, batch_size=1)
    assert evaluate_windows(model, ids, W, batch_size) == pytest.approx(one_by_one, abs=1e-12)
    runner = ThreadedDataParallel(model, workers=2)
    try:
        threaded = evaluate_windows(runner, ids, W, batch_size)
    finally:
        runner.close()
    assert threaded == pytest.approx(one_by_one, abs=1e-12)
    assert evaluate_windows_threaded(model, ids, W, batch_size) == \
        pytest.approx(one_by_one, abs=1e-12)


@pytest.mark.parametrize("n", [0, 1, W])
def test_text_too_short_for_one_window_is_one_line(n):
    with pytest.raises(UserError) as info:
        evaluate_windows(tiny_model(), random_ids(n), window=W)
    message = str(info.value)
    assert "\n" not in message
    assert f"has {n} chars" in message and f"need at least {W + 1}" in message


@pytest.mark.parametrize("window", [1, 0, 2.5, "8"])
def test_window_must_be_an_int_of_at_least_two(window):
    with pytest.raises(UserError, match="--windows must be an integer >= 2"):
        evaluate_windows(tiny_model(), random_ids(100), window=window)


class RecordingIds:
    """An array-like of ids that notes the length of every slice read from it."""

    def __init__(self, ids):
        self.ids, self.reads = ids, []

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, index):
        part = self.ids[index]
        self.reads.append(len(part))
        return part


def test_works_on_a_memmap_reading_one_batch_at_a_time(tmp_path):
    model, ids = tiny_model(), random_ids(20 * W + 5)
    path = tmp_path / "val.bin"
    ids.astype(np.uint16).tofile(path)
    mapped = np.memmap(path, dtype=np.uint16, mode="r", shape=(len(ids),))
    expected = evaluate_windows(model, ids, W, batch_size=6)
    assert evaluate_windows(model, mapped, W, batch_size=6) == pytest.approx(expected, abs=1e-12)
    recorded = RecordingIds(mapped)
    assert evaluate_windows(model, recorded, W, batch_size=6) == pytest.approx(expected, abs=1e-12)
    assert max(recorded.reads) == 6 * W + 1                 # never the whole split
    assert sum(recorded.reads) == 20 * W + 4                # 4 batches, each + the char after
