"""The textbook: each layer a ``*_forward(...) -> (out, cache)`` / ``*_backward(dout, cache)``
pair, written to be read, every result freshly allocated.

Names follow the math: x, h, c, Wx, Wh, b; a gradient is ``d`` + name.
Shape letters: N batch, T time, D input, H hidden, V vocabulary.
The fast versions of the same layers live in ``lstm_scratch.engine``.
"""
from .activations import sigmoid
from .affine import (affine_backward, affine_forward, onehot, onehot_affine_backward,
                     onehot_affine_forward)
from .dropout import dropout_backward, dropout_forward
from .embedding import (embedding_backward, embedding_dropout_backward, embedding_dropout_forward,
                        embedding_dropout_mask, embedding_forward)
from .locked_dropout import locked_dropout_backward, locked_dropout_forward, locked_dropout_mask
from .weight_drop import weight_drop_backward, weight_drop_forward, weight_drop_mask
from .gates import GATE_ORDER, gate_slice, join_gates, split_gates
from .loss import (log_softmax, softmax_cross_entropy_backward,
                   softmax_cross_entropy_forward)
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward
from .rnn import rnn_backward, rnn_forward, rnn_step_backward, rnn_step_forward
from .gru import (GRU_GATE_ORDER, gru_backward, gru_forward, gru_gate_slice, gru_step_backward,
                  gru_step_forward, join_gru_gates, split_gru_gates)

__all__ = [
    "sigmoid",
    "GATE_ORDER", "gate_slice", "split_gates", "join_gates",
    "affine_forward", "affine_backward", "onehot",
    "onehot_affine_forward", "onehot_affine_backward",
    "dropout_forward", "dropout_backward",
    "weight_drop_mask", "weight_drop_forward", "weight_drop_backward",
    "locked_dropout_mask", "locked_dropout_forward", "locked_dropout_backward",
    "embedding_forward", "embedding_backward",
    "embedding_dropout_mask", "embedding_dropout_forward", "embedding_dropout_backward",
    "log_softmax", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
    "lstm_step_forward", "lstm_step_backward",
    "lstm_forward", "lstm_backward",
    "rnn_step_forward", "rnn_step_backward", "rnn_forward", "rnn_backward",
    "GRU_GATE_ORDER", "gru_gate_slice", "split_gru_gates", "join_gru_gates",
    "gru_step_forward", "gru_step_backward", "gru_forward", "gru_backward",
]
