"""The optimizers' one-launch update on CuPy (lstm_scratch/engine/device_optim.py, .cu).

On the fake CuPy (tests/fakecupy.py) the kernels run compiled for the host (NVRTC compiles
them as CUDA in tests/test_nvrtc.py); on a GPU machine the same tests run on the real CuPy:

    LSTM_SCRATCH_CUPY_BRANCHES=gpu python -m pytest tests/test_device_optim.py

Held: RMSprop, Adam and AdamW (weight decay, clipping) update every parameter in one
launch to what the NumPy optimizer gives on the same gradients, step after step, and
arrays the kernel cannot take (a non-contiguous gradient) take the per-parameter path.
"""
import numpy as np
import pytest

from conftest import device_tests_mark
from lstm_scratch import RMSprop
from lstm_scratch.backend import to_host
from lstm_scratch.engine import device_optim
from lstm_scratch.optim import Adam, AdamW

pytestmark = device_tests_mark()


SHAPES = {"Wx0": (7, 12), "Wh0": (3, 12), "b0": (12,), "Wy": (3, 7), "by": (7,)}


def params(rng):
    return {name: rng.standard_normal(shape) for name, shape in SHAPES.items()}


@pytest.mark.parametrize("make", [
    lambda p: RMSprop(p, lr=0.01, clip_norm=1.0),
    lambda p: RMSprop(p, lr=0.01, weight_decay=0.1),
    lambda p: Adam(p, lr=0.01, weight_decay=0.05, clip_norm=2.0),
    lambda p: AdamW(p, lr=0.01, weight_decay=0.1)], ids=["rmsprop", "rmsprop-l2", "adam", "adamw"])
def test_one_launch_equals_numpy(dev, monkeypatch, make):
    rng = np.random.default_rng(0)
    host = params(rng)
    device = {k: dev.xp.asarray(v) for k, v in host.items()}
    cpu_opt, dev_opt = make(host), make(device)
    launches = []
    real = device_optim.update
    monkeypatch.setattr(device_optim, "update", lambda *a: (launches.append(a[2]), real(*a)))
    for step in range(4):
        grads = {k: rng.standard_normal(v.shape) * (step + 1) for k, v in host.items()}
        n_cpu = cpu_opt.step(grads)
        n_dev = dev_opt.step({k: dev.xp.asarray(g) for k, g in grads.items()})
        assert n_dev == pytest.approx(n_cpu, rel=1e-12)
        for name in host:
            np.testing.assert_allclose(to_host(device[name]), host[name], rtol=1e-12, atol=1e-13)
    assert launches == [type(dev_opt).DEVICE_KERNEL] * 4
    state = dev_opt.state_dict()                      # resumes as before
    assert state["steps"] == 4


def test_a_non_contiguous_gradient_takes_the_per_parameter_path(dev, monkeypatch):
    rng = np.random.default_rng(1)
    host = params(rng)
    device = {k: dev.xp.asarray(v) for k, v in host.items()}
    cpu_opt, dev_opt = RMSprop(host, lr=0.01), RMSprop(device, lr=0.01)
    monkeypatch.setattr(device_optim, "update", lambda *a: pytest.fail("one launch taken"))
    grads = {k: rng.standard_normal(v.shape[::-1]).T for k, v in host.items()}   # transposed
    cpu_opt.step(grads)
    dev_opt.step({k: dev.xp.asarray(np.asfortranarray(g)) for k, g in grads.items()})
    for name in host:
        np.testing.assert_allclose(to_host(device[name]), host[name], rtol=1e-12, atol=1e-13)


def test_tables_are_rebuilt_only_when_an_address_moves(dev):
    xp = dev.xp
    tables = device_optim.AddressTables(xp)
    a, b = xp.zeros(3), xp.zeros(4)
    first = tables("p", [a, b])
    assert tables("p", [a, b]) is first
    assert to_host(first).tolist() == [a.data.ptr, b.data.ptr]
    c = xp.zeros(4)
    assert to_host(tables("p", [a, c])).tolist() == [a.data.ptr, c.data.ptr]
    assert to_host(tables.starts([a, b])).tolist() == [0, 3, 7]
