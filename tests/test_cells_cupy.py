"""The RNN and GRU layers (textbook and engine) give on CuPy what they give on
NumPy. Skips, with the reason, without a GPU."""
import numpy as np
import pytest

from lstm_scratch import nn
from lstm_scratch.backend import cupy_available, get_backend, to_host
from lstm_scratch.engine import gru, rnn
from test_gru import random_layer as gru_layer
from test_rnn import random_layer as rnn_layer

ok, reason = cupy_available()
pytestmark = pytest.mark.skipif(not ok, reason=f"CuPy tests need a GPU: {reason}")

LAYERS = [(rnn_layer, nn.rnn_forward, nn.rnn_backward),
          (rnn_layer, rnn.rnn_forward, rnn.rnn_backward),
          (gru_layer, nn.gru_forward, nn.gru_backward),
          (gru_layer, gru.gru_forward, gru.gru_backward)]


@pytest.mark.parametrize("random_layer, forward, backward", LAYERS)
def test_layer_on_gpu_equals_numpy(random_layer, forward, backward):
    xp = get_backend("cupy").xp
    rng = np.random.default_rng(0)
    layer = random_layer(rng, N=3, T=4, D=5, H=6)
    dh, dhT = rng.standard_normal((4, 3, 6)), rng.standard_normal((3, 6))
    h, hT, cache = forward(**layer)
    g = backward(dh, cache, dhT)
    h_gpu, hT_gpu, cache_gpu = forward(**{k: xp.asarray(v) for k, v in layer.items()})
    g_gpu = backward(xp.asarray(dh), cache_gpu, xp.asarray(dhT))
    np.testing.assert_allclose(to_host(h_gpu), h, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(to_host(hT_gpu), hT, rtol=1e-10, atol=1e-13)
    for k in g:
        np.testing.assert_allclose(to_host(g_gpu[k]), g[k], rtol=1e-10, atol=1e-13, err_msg=k)
