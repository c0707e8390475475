"""Models shipped in the package, so that a name can stand where a checkpoint goes.

Right after ``pip install``, with no training::

    lstm-scratch sample shakespeare --prime "ROMEO:"
    lstm-scratch eval shakespeare
    lstm-scratch train mytext.txt --init-from shakespeare
    model, vocab = lstm_scratch.load("shakespeare")

Each is an ordinary checkpoint (weights only: no optimizer state, no carried state) in
``lstm_scratch/models/``, read with the same checks as any other file. A file of the
same name in the current folder wins: a name is a shipped model only where no such
file exists (a folder does not hide it). scripts/train_starter.py trains and writes
them; README.md ("A model in the box") gives its command and figures.
"""
import os
from importlib import resources

from .errors import UserError

# name -> (file in lstm_scratch/models/, what it is)
SHIPPED = {
    "shakespeare": ("shakespeare.npz", "2x256 LSTM on the built-in tinyshakespeare, "
                                       "last 10% held out"),
}


def shipped_path(name):
    """The installed file of the shipped model ``name``."""
    return str(resources.files("lstm_scratch").joinpath("models", SHIPPED[name][0]))


def is_shipped(path):
    """Does ``path`` name a shipped model? (A name, where no file of that name is.)"""
    return os.fspath(path) in SHIPPED and not os.path.isfile(path)


def checkpoint_path(path):
    """``path`` as given when it is a file (or anything but a shipped model's name),
    else the shipped model of that name; a name that is neither is a one-line error
    that lists the shipped names. Only a file hides a shipped model: a run folder
    called shakespeare/ does not."""
    path = os.fspath(path)
    if is_shipped(path):
        found = shipped_path(path)
        if not os.path.exists(found):   # a source tree where train_starter.py has not run
            raise UserError(f"{path}: the shipped model is missing from this installation "
                            f"({found}); make it with: python scripts/train_starter.py")
        return found
    if not os.path.exists(path):
        raise UserError(f"{path}: no such checkpoint file, nor a shipped model "
                        f"(shipped: {', '.join(SHIPPED)})")
    return path
