import numpy as np
import pytest

from lstm_scratch import UserError
from lstm_scratch.config import TrainConfig


@pytest.mark.parametrize("options, match", [
    (dict(lr="0.1"), "--lr must be a number, got '0.1'"),
    (dict(dropout=None), "--dropout must be a number, got None"),
    (dict(val_frac=True), "--val-frac must be a number, got True"),
    (dict(clip_norm="x"), "--clip-norm must be a number, got 'x'"),
    (dict(sample_temperatures="abc"), "--sample-temperatures must be numbers, got 'abc'"),
    (dict(sample_temperatures=(0.5, "hot")), "--sample-temperatures must be numbers"),
    (dict(data=3), "--data must be a path or a non-empty list of paths, got 3"),
    (dict(seed=-1), "--seed must be an integer >= 0, got -1"),
    (dict(threads=10**6), "--threads must be at most 1024, got 1000000"),
    (dict(threads="x"), "--threads must be an integer >= 1, got 'x'"),
])
def test_options_of_the_wrong_type_are_one_line_errors(options, match):
    # from a notebook, or from the config saved in a damaged checkpoint (was a TypeError)
    with pytest.raises(UserError, match=match):
        TrainConfig(**options).resolved()


def test_numpy_numbers_are_numbers():
    config = TrainConfig(lr=np.float32(0.01), dropout=np.float64(0.1)).resolved()
    assert config.lr == pytest.approx(0.01)


@pytest.mark.parametrize("mode, clip", [("stream", 5.0), ("window", 0.0)])
def test_clip_norm_defaults_by_mode_and_0_is_off(mode, clip):
    assert TrainConfig(mode=mode).resolved().clip_norm == clip
    assert TrainConfig(mode=mode, clip_norm=0).resolved().clip_norm == 0
    with pytest.raises(UserError, match=r"--clip-norm must be >= 0 \(0 = off\)"):
        TrainConfig(mode=mode, clip_norm=-1.0).resolved()
