"""Every CUDA source the library builds compiles as CUDA device code (NVRTC, no GPU needed).

The fake CuPy (tests/fakecupy.py) compiles the same sources for the host, which accepts
them as C++; NVRTC is the compiler CuPy itself uses on a GPU machine. The RawModule files
(device_sampling.cu, device_optim.cu) are compiled whole; the ElementwiseKernel bodies are
collected by running a training step of each cell and a sampling run on the fake CuPy,
then compiled inside a kernel of CuPy's shape (one thread per index i). Skips where
NVRTC does not load (``pip install nvidia-cuda-nvrtc-cu12``; CI installs it).
"""
import sys

import numpy as np
import pytest

import fakecupy
import nvrtc
from lstm_scratch import CharRNN, RMSprop, Vocab, generate
from lstm_scratch.backend import Backend
from lstm_scratch.engine import device_optim, device_sampling

ok, why = nvrtc.available()
pytestmark = pytest.mark.skipif(not ok, reason=why)


@pytest.mark.skipif(fakecupy.CXX is None, reason="no C++ compiler for the fake CuPy")
def test_every_elementwise_kernel_compiles_as_cuda(monkeypatch):
    cupy, cupyx = fakecupy.modules()
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "cupyx", cupyx)
    built = []
    real = fakecupy.ElementwiseKernel.__call__

    def record(self, *args, size=None):
        T = next(a.dtype.name for a, (raw, t, _) in zip(args, self.inputs + self.outputs)
                 if raw and t == "T")
        built.append((self.name, T, self))
        return real(self, *args, size=size)
    monkeypatch.setattr(fakecupy.ElementwiseKernel, "__call__", record)
    dev = Backend("cupy", cupy)
    vocab = Vocab(sorted("abcdefg\n"))
    for cell in ("lstm", "gru", "rnn"):
        for dtype in ("float32", "float64"):
            model = CharRNN(len(vocab.chars), cell, 6, 2, dropout=0.2, dtype=dtype, backend=dev,
                            weight_drop=0.2)
            ids = dev.xp.asarray(np.random.default_rng(0).integers(0, 8, (3, 5)))
            _, grads, _ = model.loss_and_grads(ids, ids)[:3]
            RMSprop(model.params).step(grads)
            generate(model, vocab, "ab", 5, seed=0)
    names = {name for name, _, _ in built}
    assert {"lstm_cell_forward", "lstm_cell_backward", "gru_cell_forward", "gru_cell_backward",
            "rnn_cell_forward", "rnn_cell_backward"} <= names
    done = set()
    for name, T, kernel in built:
        if (name, T) in done:
            continue
        done.add((name, T))
        spec = lambda params: ", ".join(f"{'raw ' if raw else ''}{t} {n}" for raw, t, n in params)
        source = nvrtc.elementwise_source(spec(kernel.inputs), spec(kernel.outputs),
                                          kernel.operation, name, T)
        ptx = nvrtc.compile_ptx(source, f"{name}.cu")
        assert f".entry {name}(" in ptx


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("module", [device_sampling, device_optim], ids=lambda m: m.__name__)
def test_the_raw_modules_compile_as_cuda(module, dtype):
    """device_sampling.cu and device_optim.cu, whole, with their #defines for ``dtype``."""
    name = module.SOURCE.name
    ptx = nvrtc.compile_ptx(module.source(dtype), name)
    for kernel in module.KERNELS:
        assert f".entry {kernel}(" in ptx
