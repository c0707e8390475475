"""The time loops as CUDA graphs (lstm_scratch/engine/graphs.py).

Without a GPU these run on the fake CuPy (tests/fakecupy.py), whose streams record
kernel launches and cuBLAS calls while they capture, refuse anything else (an
allocation, CuPy's own matmul), and replay the record, refusing an array freed
since. On a GPU machine the same tests run on the real CuPy (bench/gpu_check.py):

    LSTM_SCRATCH_CUPY_BRANCHES=gpu python -m pytest tests/test_graphs.py

What is held: training with graphs equals training without them and the NumPy
model (float64, 1e-10), graphs are captured from the second step and replayed
after, a loop whose arrays move never is, and a capture that fails says so once
and runs the loop as before.
"""
import numpy as np
import pytest

from conftest import device_tests_mark, fake_only
from lstm_scratch import CharRNN
from lstm_scratch.backend import cupy_available, to_host
from lstm_scratch.engine import graphs
from lstm_scratch.engine.workspace import FRESH, Workspace

pytestmark = device_tests_mark()


def batch(V=9, B=3, T=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))


def loop_graphs(model):
    """The graphs (not the keys met once) in the model's layer workspaces."""
    found = []
    for child in model.workspace._children.values():
        found += [g[0] for g in child.graphs.values() if g not in (graphs.SEEN, graphs.EAGER)]
    return found


def train_steps(model, steps=3, **options):
    inputs, targets = batch(model.vocab_size)
    out = []
    state = None
    for _ in range(steps):
        loss, grads, state = model.loss_and_grads(inputs, targets, state, **options)[:3]
        out.append((float(loss), {k: to_host(v) for k, v in grads.items()}))
    return out


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("regularised", [False, True])
def test_training_with_graphs_equals_without_and_numpy(dev, monkeypatch, regularised, cell):
    """Three steps with the state carried: losses and gradients with graphs equal those
    without (1e-12), and the NumPy model's (1e-10; not with dropout, whose masks the
    device draws from its own stream), weight drop and locked dropout included."""
    kwargs = dict(vocab_size=9, hidden_size=10, num_layers=2, dtype="float64", seed=1,
                  dropout=0.0, cell=cell)
    if regularised:
        kwargs.update(weight_drop=0.3, dropout=0.2, locked_dropout=True)
    rng = lambda: dict(dropout_rng=np.random.default_rng(5)) if regularised else {}
    model = CharRNN(backend=dev, **kwargs)
    with_graphs = train_steps(model, **rng())
    assert len(loop_graphs(model)) == 4              # 2 layers x (forward, backward)
    monkeypatch.setenv("LSTM_SCRATCH_GRAPHS", "0")
    without = train_steps(CharRNN(backend=dev, **kwargs), **rng())
    cpu = train_steps(CharRNN(backend="numpy", **kwargs), **rng())
    for a, b, c in zip(with_graphs, without, cpu):
        assert a[0] == pytest.approx(b[0], rel=1e-12)
        assert regularised or a[0] == pytest.approx(c[0], rel=1e-10)
        for name in a[1]:
            np.testing.assert_allclose(a[1][name], b[1][name], rtol=1e-12, atol=1e-14)
            if not regularised:
                np.testing.assert_allclose(a[1][name], c[1][name], rtol=1e-10, atol=1e-12)


@fake_only
def test_captured_the_second_time_replayed_after(dev):
    model = CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", backend=dev, dropout=0.0)
    train_steps(model, steps=1)
    assert loop_graphs(model) == []                  # met once: run as before
    train_steps(model, steps=1)
    captured = loop_graphs(model)
    assert len(captured) == 2 and all(g.launches == 1 for g in captured)
    train_steps(model, steps=2)
    assert all(g.launches == 3 for g in loop_graphs(model))


def test_arrays_that_move_are_never_captured(dev):
    """A fresh workspace (new arrays every call) has no graphs; nor does NumPy."""
    calls = []
    xp = dev.xp
    a = xp.zeros(3)
    for _ in range(3):
        graphs.run_loop(FRESH, "forward", xp, range(2), calls.append, (a,))
        graphs.run_loop(Workspace(), "forward", np, range(2), calls.append, (np.zeros(3),))
    assert calls == [0, 1] * 6


def test_a_failed_capture_is_said_once_and_the_loop_still_runs(dev, monkeypatch, capsys):
    model = CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", backend=dev, dropout=0.0)
    want = train_steps(CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", dropout=0.0))

    def refuse(self, mode=None):
        raise RuntimeError("operation not permitted when stream is capturing")
    refusing = type("Refusing", (dev.xp.cuda.Stream,), {"begin_capture": refuse})
    monkeypatch.setattr(dev.xp.cuda, "Stream", refusing)       # a stream that cannot capture
    monkeypatch.setattr(graphs, "_SAID", set())
    got = train_steps(model)
    assert loop_graphs(model) == []
    err = capsys.readouterr().err
    assert err.count("a time loop runs launch by launch, not as a CUDA graph") == 1
    for (la, ga), (lb, gb) in zip(got, want):
        assert la == pytest.approx(lb, rel=1e-10)


def test_cupys_matmul_is_not_captured(dev, monkeypatch):
    """LSTM_SCRATCH_CUBLAS=0: the products go through cupy.matmul, which refuses
    capture, so the loop is not offered for it."""
    monkeypatch.setenv("LSTM_SCRATCH_CUBLAS", "0")
    model = CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", backend=dev, dropout=0.0)
    train_steps(model)
    assert loop_graphs(model) == []


def test_only_the_latest_keys_are_kept(dev):
    ws, xp = Workspace(), dev.xp
    arrays = [xp.zeros(k + 1) for k in range(graphs.MAX_GRAPHS + 3)]
    for a in arrays:
        graphs.run_loop(ws, "forward", xp, range(1), lambda t: None, (a,))
    assert len(ws.graphs) == graphs.MAX_GRAPHS
    assert [key[-1][0][1] for key in ws.graphs] == [a.shape for a in arrays[3:]]


@fake_only
def test_tf32_is_the_handles_math_mode_for_the_run(dev, monkeypatch, tmp_path):
    """train(tf32=True) on CuPy: TF32 math on CuPy's cuBLAS handle while it trains, the
    caller's mode after; the banner says so."""
    import io
    import lstm_scratch as ls
    from conftest import make_text
    modes = []
    cublas = dev.xp.cuda.cublas
    monkeypatch.setattr(cublas, "setMathMode", lambda handle, mode: modes.append(mode))
    monkeypatch.setattr(cublas, "getMathMode", lambda handle: 7)     # the caller's, restored
    out = io.StringIO()
    ls.train(make_text(40), str(tmp_path / "run"), backend="cupy", tf32=True, hidden_size=8,
             seq_len=10, batch_size=4, max_steps=3, dropout=0.0, sample_temperatures=(), out=out)
    assert modes == [cublas.CUBLAS_TF32_TENSOR_OP_MATH, 7]
    assert "tf32: float32 products in TF32 on the GPU's tensor cores" in out.getvalue()
    saved = ls.load(str(tmp_path / "run" / "latest.npz"))
    assert saved[0].backend.name in ("numpy", "cupy")


def test_tf32_on_the_cpu(tmp_path):
    """backend numpy: refused in one line; auto without a GPU: full float32, said."""
    import io
    import lstm_scratch as ls
    from conftest import make_text
    from lstm_scratch.errors import UserError
    with pytest.raises(UserError, match="tf32.*off with backend numpy"):
        ls.train(make_text(20), backend="numpy", tf32=True, max_steps=1)
    if cupy_available()[0]:
        return
    out = io.StringIO()
    ls.train(make_text(40), str(tmp_path / "run"), backend="auto", tf32=True, hidden_size=8,
             seq_len=10, batch_size=4, max_steps=2, dropout=0.0, sample_temperatures=(), out=out)
    assert "tf32: no GPU here, so full float32" in out.getvalue()


def test_arrays_that_move_every_step_are_said_once(dev, monkeypatch, capsys):
    monkeypatch.setattr(graphs, "_SAID", set())
    ws, xp = Workspace(), dev.xp
    for k in range(2 * graphs.MAX_GRAPHS):
        graphs.run_loop(ws, "forward", xp, range(1), lambda t: None, (xp.zeros(k + 1),))
    assert capsys.readouterr().err.count("its arrays move from step to step") == 1


def test_the_banner_names_the_graphs(dev, monkeypatch):
    from lstm_scratch.train import describe_engine
    model = CharRNN(9, hidden_size=8, num_layers=1, backend=dev)
    assert describe_engine(model).endswith(", each time loop a CUDA graph")
    monkeypatch.setenv("LSTM_SCRATCH_GRAPHS", "0")
    assert "CUDA graph" not in describe_engine(model)
    assert "CUDA graph" not in describe_engine(CharRNN(9, hidden_size=8, num_layers=1))


@fake_only
def test_the_graph_keeps_what_a_replay_uses(dev):
    """The capture stream and a cuBLAS workspace of ours stay with the graph."""
    model = CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", backend=dev, dropout=0.0)
    train_steps(model, steps=2)
    entries = [e for child in model.workspace._children.values() for e in child.graphs.values()
               if e not in (graphs.SEEN, graphs.EAGER)]
    assert entries and all(len(e) == 3 for e in entries)
    graph, stream, workspace = entries[0]
    assert workspace.nbytes == graphs.WORKSPACE_BYTES


def test_a_change_of_tf32_is_a_new_graph(dev, monkeypatch):
    """The key holds cuBLAS's math mode: a graph captured in full float32 is not replayed
    once TF32 is on (nor the reverse)."""
    from lstm_scratch.backend import set_tf32
    model = CharRNN(9, hidden_size=8, num_layers=1, dtype="float32", backend=dev, dropout=0.0)
    train_steps(model, steps=2)
    before = len(loop_graphs(model))
    set_tf32(dev, True)
    try:
        train_steps(model, steps=2)
    finally:
        set_tf32(dev, False)
    assert before == 2 and len(loop_graphs(model)) == 4


def test_without_cublas_c_api_the_loops_run_as_before(dev, monkeypatch):
    """Where cuBLAS's C functions cannot be found, the products go through CuPy's wrappers,
    which refuse capture: the loops are not offered for it, and train as before."""
    from lstm_scratch.engine import cublas_c
    monkeypatch.setattr(cublas_c, "c_api", lambda *module: None)
    kwargs = dict(vocab_size=9, hidden_size=8, num_layers=2, dtype="float64", dropout=0.0)
    model = CharRNN(backend=dev, **kwargs)
    got = train_steps(model)
    assert loop_graphs(model) == []
    want = train_steps(CharRNN(**kwargs))
    for (la, _), (lb, _) in zip(got, want):
        assert la == pytest.approx(lb, rel=1e-10)


@fake_only
def test_cupys_cublas_wrapper_refuses_capture_as_cupys_does(dev):
    xp = dev.xp
    stream = xp.cuda.Stream(non_blocking=True)
    a = xp.asarray(np.ones((2, 2)))
    scalars = np.ones(2)
    with stream:
        stream.begin_capture()
        with pytest.raises(NotImplementedError, match="stream capture"):
            xp.cuda.cublas.dgemm(0, 0, 0, 2, 2, 2, scalars.ctypes.data, a.data.ptr, 2, a.data.ptr,
                                 2, scalars.ctypes.data, a.data.ptr, 2)
        stream.end_capture()


def test_cublas_c_finds_the_loaded_library_by_its_map(tmp_path):
    from lstm_scratch.engine import cublas_c
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 00000000 08:01 1 /opt/cuda/lib64/libcublasLt.so.12.9\n"
                    "7f02-7f03 r-xp 00000000 08:01 2 /site/nvidia/cublas/lib/libcublas.so.12\n"
                    "7f04-7f05 r-xp 00000000 08:01 3 /usr/lib/libc.so.6\n")
    assert cublas_c.loaded_library(str(maps)) == "/site/nvidia/cublas/lib/libcublas.so.12"
    maps.write_text("7f04-7f05 r-xp 00000000 08:01 3 /usr/lib/libc.so.6\n")
    assert cublas_c.loaded_library(str(maps)) is None
    assert cublas_c.loaded_library(str(tmp_path / "none")) is None


def test_a_capture_runs_nothing_until_the_graph_is_launched(dev, monkeypatch):
    """What a capture records must not also run: the layer's outputs are unchanged after
    end_capture and before the launch (a product left on another stream would run, and
    every replay after would be wrong), then the launch computes them."""
    from lstm_scratch.engine.lstm import lstm_forward
    xp, rng = dev.xp, np.random.default_rng(0)
    T, N, H, V = 4, 2, 5, 6
    Wx, Wh = (xp.asarray(rng.standard_normal(s) * 0.5) for s in ((V, 4 * H), (H, 4 * H)))
    b = xp.asarray(rng.standard_normal(4 * H))
    ids = xp.asarray(rng.integers(0, V, (T, N)))
    ws = Workspace()
    h0 = xp.asarray(rng.standard_normal((N, H)))
    lstm_forward(ids, h0, xp.zeros((N, H)), Wx, Wh, b, ws=ws)           # met once: eager
    seen = {}
    real = graphs.capture

    def checking(xp_, steps, body):
        before = to_host(ws.empty(xp, "hs", (T + 1, N, H), np.float64)).copy()
        entry = real(xp_, steps, body)
        seen["unchanged"] = np.array_equal(to_host(ws.empty(xp, "hs", (T + 1, N, H),
                                                           np.float64)), before)
        return entry
    monkeypatch.setattr(graphs, "capture", checking)
    h0b = xp.asarray(rng.standard_normal((N, H)))                        # another start
    h, _, _ = lstm_forward(ids, h0b, xp.zeros((N, H)), Wx, Wh, b, ws=ws)
    assert seen == {"unchanged": True}                # captured, and nothing ran then
    monkeypatch.setenv("LSTM_SCRATCH_GRAPHS", "0")
    want, _, _ = lstm_forward(ids, h0b, xp.zeros((N, H)), Wx, Wh, b)
    np.testing.assert_allclose(to_host(h), to_host(want), rtol=1e-12, atol=1e-14)


def test_cublas_c_uses_the_library_cupys_module_was_linked_with(tmp_path, monkeypatch):
    """Given CuPy's cuBLAS module, its own file is where the C functions are looked up
    (dlsym follows what it was linked with), whatever else is mapped; without one, the
    single mapped libcublas, and none of several."""
    import types
    from lstm_scratch.engine import cublas_c
    opened = []

    class Lib:
        def __init__(self, path):
            opened.append(path)
            self.cublasSgemm_v2 = self.cublasDgemm_v2 = lambda *a: 0
            self.cublasSetPointerMode_v2 = lambda *a: 0
    monkeypatch.setattr(cublas_c.ctypes, "CDLL", Lib)
    monkeypatch.setattr(cublas_c, "_found", None)
    module = types.SimpleNamespace(__file__="/site/cupy_backends/cuda/libs/cublas.so")
    assert cublas_c.c_api(module).path == module.__file__ and opened == [module.__file__]
    maps = tmp_path / "maps"
    maps.write_text("1-2 r-xp 0 0 1 /a/libcublas.so.12\n3-4 r-xp 0 0 2 /b/libcublas.so.13\n")
    assert cublas_c.loaded_library(str(maps)) is None              # which made the handle?


@fake_only
def test_a_graph_that_fails_to_launch_falls_back_once(dev, monkeypatch, capsys):
    model = CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", backend=dev, dropout=0.0)
    want = train_steps(CharRNN(9, hidden_size=8, num_layers=1, dtype="float64", dropout=0.0))
    import fakecupy

    def broken(self, stream=None):
        raise RuntimeError("cudaErrorInvalidValue: invalid argument")
    monkeypatch.setattr(fakecupy._Graph, "launch", broken)
    monkeypatch.setattr(graphs, "_SAID", set())
    got = train_steps(model)
    assert capsys.readouterr().err.count("failed to launch, so it runs launch by launch") == 1
    for (la, _), (lb, _) in zip(got, want):
        assert la == pytest.approx(lb, rel=1e-10)
