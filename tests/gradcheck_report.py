"""Print the gradient-check errors themselves (the tests only say pass or fail).

    python tests/gradcheck_report.py [DRAWS]

For DRAWS random shapes and values (default 15), checks the LSTM layer's
gradients for x, h0, c0, Wx, Wh, b (random upstream for h, h_T and c_T), the
vanilla RNN's and the GRU's layers likewise, and the whole model's loss_and_grads (many-to-many and many-to-one, dropout 0.3
with a fixed mask, nonzero initial state), and prints the largest relative
error of each against float64 central differences.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gradcheck import check_grads  # noqa: E402
from test_lstm import random_layer  # noqa: E402
from test_model import random_model  # noqa: E402

from lstm_scratch.nn import lstm_backward, lstm_forward  # noqa: E402


def layer_errors(rng):
    N, T, D, H = (int(rng.integers(1, 5)) for _ in range(4))
    layer = random_layer(rng, N, T, D, H)
    dh = rng.standard_normal((T, N, H))
    dhT, dcT = rng.standard_normal((N, H)), rng.standard_normal((N, H))

    def f():
        h, (hT, cT), _ = lstm_forward(**layer)
        return (h * dh).sum() + (hT * dhT).sum() + (cT * dcT).sum()
    g = lstm_backward(dh, lstm_forward(**layer)[2], dhT, dcT)
    return check_grads(f, layer, {"x": g["dx"], "h0": g["dh0"], "c0": g["dc0"],
                                  "Wx": g["dWx"], "Wh": g["dWh"], "b": g["db"]})


def model_errors(rng, seed, many_to_one):
    dims = dict(B=int(rng.integers(1, 4)), T=int(rng.integers(1, 5)), V=int(rng.integers(2, 6)),
                H=int(rng.integers(1, 4)), L=int(rng.integers(1, 4)))
    model = random_model(dims, seed, dropout=0.3)
    B, T, V, H = dims["B"], dims["T"], dims["V"], dims["H"]
    inputs = rng.integers(0, V, (B, T))
    targets = rng.integers(0, V, (B,) if many_to_one else (B, T))
    state = [(rng.standard_normal((B, H)), rng.standard_normal((B, H))) for _ in range(dims["L"])]
    run = lambda: model.loss_and_grads(inputs, targets, state,
                                       dropout_rng=np.random.default_rng(seed))
    return check_grads(lambda: run()[0], model.params, run()[1])


def cell_errors(rng, cell):
    """The vanilla RNN's or the GRU's layer, as layer_errors does the LSTM's."""
    import test_gru
    import test_rnn
    from lstm_scratch import nn
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
        for name, errors in (("LSTM layer: x, h0, c0, Wx, Wh, b", layer_errors(rng)),
                             ("model, many-to-many", model_errors(rng, seed, False)),
                             ("model, many-to-one", model_errors(rng, seed, True)),
                             ("RNN layer: x, h0, Wx, Wh, b", cell_errors(rng, "rnn")),
                             ("GRU layer: x, h0, Wx, Wh, bx, bh", cell_errors(rng, "gru"))):
            worst[name] = max(worst.get(name, 0.0), max(errors.values()))
    for name, err in worst.items():
        print(f"{name:34s} max relative error {err:.1e} over {draws} draws (limit 1e-6)")


if __name__ == "__main__":
    main()
