"""Print the gradient-check errors themselves (the tests only say pass or fail).

    python tests/gradcheck_report.py [DRAWS]

For DRAWS random shapes and values (default 15), checks every backward of the
textbook (lstm_scratch/nn/) against float64 central differences: the LSTM
step and layer (random upstream for h, h_T and c_T), the vanilla RNN's and
the GRU's layers likewise, affine, one-hot affine, dropout (a fixed mask),
softmax cross-entropy; and the whole model's loss_and_grads for each cell
(LSTM, GRU, RNN) on either engine (many-to-many and many-to-one, dropout 0.3
with a fixed mask, nonzero initial state). Prints the largest relative error
of each.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gradcheck import check_grads  # noqa: E402
from test_lstm import random_layer  # noqa: E402
from test_model import random_model, random_state  # noqa: E402

from lstm_scratch import nn  # noqa: E402
from lstm_scratch.backend import dropout_mask  # noqa: E402


def step_errors(rng):
    N, D, H = (int(rng.integers(1, 5)) for _ in range(3))
    layer = random_layer(rng, N, 1, D, H)
    arrays = dict(x=layer["x"][0], h_prev=layer["h0"], c_prev=layer["c0"],
                  Wx=layer["Wx"], Wh=layer["Wh"], b=layer["b"])
    dh, dc = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def f():
        h, c, _ = nn.lstm_step_forward(**arrays)
        return (h * dh).sum() + (c * dc).sum()
    grads = nn.lstm_step_backward(dh, dc, nn.lstm_step_forward(**arrays)[2])
    return check_grads(f, arrays, dict(zip(arrays, grads)))


def layer_errors(rng):
    N, T, D, H = (int(rng.integers(1, 5)) for _ in range(4))
    layer = random_layer(rng, N, T, D, H)
    dh = rng.standard_normal((T, N, H))
    dhT, dcT = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def f():
        h, (hT, cT), _ = nn.lstm_forward(**layer)
        return (h * dh).sum() + (hT * dhT).sum() + (cT * dcT).sum()
    g = nn.lstm_backward(dh, nn.lstm_forward(**layer)[2], dhT, dcT)
    return check_grads(f, layer, {"x": g["dx"], "h0": g["dh0"], "c0": g["dc0"],
                                  "Wx": g["dWx"], "Wh": g["dWh"], "b": g["db"]})


def small_layer_errors(rng):
    """affine, one-hot affine, dropout and softmax cross-entropy, each on its own."""
    K, D, M = (int(rng.integers(1, 5)) for _ in range(3))
    a = dict(x=rng.standard_normal((K, D)), W=rng.standard_normal((D, M)), b=rng.standard_normal(M))
    dy = rng.standard_normal((K, M))
    errors = check_grads(lambda: (nn.affine_forward(**a)[0] * dy).sum(), a,
                         dict(zip("xWb", nn.affine_backward(dy, nn.affine_forward(**a)[1]))))
    ids, w = rng.integers(0, D, K), dict(W=a["W"], b=a["b"])
    errors.update(check_grads(lambda: (nn.onehot_affine_forward(ids, **w)[0] * dy).sum(), w,
                              dict(zip("Wb", nn.onehot_affine_backward(
                                  dy, nn.onehot_affine_forward(ids, **w)[1])))))
    mask, x = dropout_mask(rng, (K, D), 0.7, np.float64), dict(x=a["x"])
    dx = rng.standard_normal((K, D))
    errors.update(check_grads(lambda: (nn.dropout_forward(x["x"], mask)[0] * dx).sum(), x,
                              dict(x=nn.dropout_backward(dx, mask))))
    z, targets = dict(z=rng.standard_normal((K, M)) * 2), rng.integers(0, M, K)
    cache = nn.softmax_cross_entropy_forward(z["z"], targets)[1]
    errors.update(check_grads(lambda: nn.softmax_cross_entropy_forward(z["z"], targets)[0], z,
                              dict(z=nn.softmax_cross_entropy_backward(1.0, cache))))
    return errors


def model_errors(rng, seed, many_to_one, engine, cell="lstm"):
    dims = dict(B=int(rng.integers(1, 4)), T=int(rng.integers(1, 5)), V=int(rng.integers(2, 6)),
                H=int(rng.integers(1, 4)), L=int(rng.integers(1, 4)))
    model = random_model(dims, seed, dropout=0.3, engine=engine, cell=cell)
    B, T, V = dims["B"], dims["T"], dims["V"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = random_state(model, B, rng)
    run = lambda: model.loss_and_grads(inputs, targets, state,
                                       dropout_rng=np.random.default_rng(seed))
    return check_grads(lambda: run()[0], model.params, run()[1])


def cell_errors(rng, cell):
    """The vanilla RNN's or the GRU's layer, as layer_errors does the LSTM's."""
    import test_gru
    import test_rnn
    module = dict(rnn=test_rnn, gru=test_gru)[cell]
    forward, backward = getattr(nn, f"{cell}_forward"), getattr(nn, f"{cell}_backward")
    N, T, D, H = (int(rng.integers(1, 5)) for _ in range(4))
    layer = module.random_layer(rng, N, T, D, H)
    dh, dhT = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))

    def f():
        h, hT, _ = forward(**layer)
        return (h * dh).sum() + (hT * dhT).sum()
    g = backward(dh, forward(**layer)[2], dhT)
    return check_grads(f, layer, {name: g["dh0" if name == "h0" else "d" + name] for name in layer})


def main():
    draws = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    worst = {}
    for seed in range(draws):
        rng = np.random.default_rng(seed)
        checks = [("LSTM step: x, h_prev, c_prev, Wx, Wh, b", step_errors(rng)),
                  ("LSTM layer: x, h0, c0, Wx, Wh, b", layer_errors(rng)),
                  ("RNN layer: x, h0, Wx, Wh, b", cell_errors(rng, "rnn")),
                  ("GRU layer: x, h0, Wx, Wh, bx, bh", cell_errors(rng, "gru")),
                  ("affine, one-hot, dropout, softmax-CE", small_layer_errors(rng))]
        for cell in ("lstm", "gru", "rnn"):
            for engine in ("reference", "fast"):
                checks += [(f"{cell} model ({engine}), many-to-many",
                            model_errors(rng, seed, False, engine, cell)),
                           (f"{cell} model ({engine}), many-to-one",
                            model_errors(rng, seed, True, engine, cell))]
        for name, errors in checks:
            worst[name] = max(worst.get(name, 0.0), max(errors.values()))
    for name, err in worst.items():
        print(f"{name:40s} max relative error {err:.1e} over {draws} draws (limit 1e-6)")


if __name__ == "__main__":
    main()
