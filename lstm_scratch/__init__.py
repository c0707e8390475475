"""lstm-scratch: a character-level LSTM language model written from scratch on NumPy/CuPy.

``CharRNN(vocab_size, cell="lstm"|"gru"|"rnn", ...)`` stacks any of three
cells; ``CharLSTM`` is the LSTM one.

Every forward and backward pass is written by hand, to be read in
``lstm_scratch.nn`` (the textbook) and run fast by ``lstm_scratch.engine``,
which the tests hold equal to it; the textbook's gradients are checked
against finite differences. For a notebook::

    import lstm_scratch as ls
    model, vocab, history = ls.train("input.txt", out_dir="runs/mine", max_steps=200)
    model, vocab = ls.load("runs/mine/best.npz")
    print(ls.generate(model, vocab, prime="ROMEO:", length=300, temperature=0.8))

``ls.load("shakespeare")`` loads the model shipped in the package (starter.py), and
``ls.export_html(model, vocab, "model.html")`` writes a page that writes in the browser.
"""
__version__ = "0.1.0"

from .api import generate, load, train  # noqa: E402
from .backend import get_backend  # noqa: E402
from .data import Vocab  # noqa: E402
from .errors import UserError  # noqa: E402
from .model import CharLSTM, CharRNN  # noqa: E402
from .optim import Adam, AdamW, RMSprop  # noqa: E402
from .webpage import export_html  # noqa: E402

__all__ = ["train", "load", "generate", "CharRNN", "CharLSTM", "RMSprop", "Adam", "AdamW", "Vocab",
           "UserError", "get_backend", "export_html", "__version__"]
