"""lstm-scratch: a character-level LSTM language model written from scratch on NumPy/CuPy.

Every forward and backward pass is written by hand (see ``lstm_scratch.nn``)
and checked against finite differences by the tests.
"""
from .backend import get_backend
from .errors import UserError
from .model import CharLSTM
from .optim import RMSprop

__version__ = "0.1.0"

__all__ = ["CharLSTM", "RMSprop", "UserError", "get_backend", "__version__"]
