"""The three calls a notebook needs: train, load, generate.

    >>> import lstm_scratch as ls
    >>> model, vocab, history = ls.train("input.txt", out_dir="runs/mine", max_steps=200)
    >>> model, vocab = ls.load("runs/mine/best.npz")
    >>> print(ls.generate(model, vocab, prime="ROMEO:", length=300, temperature=0.8))

The CLI takes exactly these paths.
"""
import os

from .checkpoint import load_checkpoint
from .config import TEXT_GIVEN, TrainConfig
from .data import Vocab
from .documents import is_list
from .errors import UserError
from .model import CELLS, make_model
from .prepared import prepared_val_frac
from .sampling import generate
from .starter import is_shipped
from .train import Trainer, saved_config

__all__ = ["train", "load", "generate"]


def train(path_or_text=None, out_dir=None, *, resume=None, out=None, **options):
    """Train a model; returns (model, vocab, history).

    path_or_text : a path to a UTF-8 text file, or to a folder written by
        ``lstm-scratch prepare`` (memory-mapped: the corpus is never held); a
        folder of .txt files, or a list of files and folders (documents.py:
        every .txt file, recursively, in sorted order, joined by ``doc_sep``,
        a blank line unless given); or the training text itself (a str
        containing a newline is taken as text); None = the built-in
        tinyshakespeare corpus
    out_dir : folder for checkpoints (latest.npz, best.npz) and metrics.jsonl;
        None keeps nothing on disk
    resume : a checkpoint to continue from (options may extend epochs/max_steps)
    out : stream for progress and samples (default stdout)
    options : any TrainConfig field, e.g. hidden_size=128, max_steps=500,
        mode="window", cell="gru" (or "rnn"; default "lstm"), sample_temperatures=()
        to skip samples, engine="reference" to run the textbook code of lstm_scratch.nn;
        init_from="runs/x/best.npz" fine-tunes that checkpoint (finetune.py): its
        weights (its average, if it kept one) and architecture, a fresh optimizer
        from step 0, these options' schedule, and the vocabulary grown by the new
        text's characters
    history : one dict per evaluation (step, epoch, train_loss, val_loss, ...)
    model : with ``ema``, it holds the average of the weights (what the run evaluated
        and sampled, and what ``load`` gives); the live weights are in the checkpoint
    """
    trainer = make_trainer(path_or_text, out_dir, resume=resume, out=out, **options)
    history = trainer.run()
    if trainer.ema is not None:         # the weights the run evaluated, as load() gives them
        trainer.model.load_params(trainer.ema.average)
    return trainer.model, trainer.vocab, history


def make_trainer(path_or_text=None, out_dir=None, *, resume=None, out=None, **options):
    """The Trainer that :func:`train` runs (same arguments); the CLI uses it to
    learn whether the run was interrupted."""
    text, data = None, None
    if is_list(path_or_text) and len(path_or_text) == 1:
        path_or_text = path_or_text[0]                  # one path: as given alone
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        text, data = path_or_text, TEXT_GIVEN
    elif is_list(path_or_text):             # absolute: a resumed run may start elsewhere
        data = [os.path.abspath(os.fspath(p)) for p in path_or_text]
    elif path_or_text is not None:
        data = os.path.abspath(os.fspath(path_or_text))
    if data is not None and "val_frac" not in options:
        val_frac = prepared_val_frac(data)              # a prepared folder's split is fixed
        if val_frac is not None and not resume:
            options["val_frac"] = val_frac
    init_from = options.get("init_from")
    if init_from is not None and not isinstance(init_from, (str, os.PathLike)):
        raise UserError(f"--init-from must be a checkpoint's path, got {init_from!r}")
    if init_from is not None and resume:
        raise UserError(f"init_from (--init-from) and resume (--resume) do not combine: "
                        f"--resume {resume} continues its run, --init-from starts a new one "
                        f"from a checkpoint's weights")
    saved = load_checkpoint(resume) if resume else None        # read once, used twice
    init = load_checkpoint(init_from) if init_from is not None else None
    if init:
        init_from = os.fspath(init_from)                # a shipped model keeps its name
        options["init_from"] = init_from if is_shipped(init_from) else os.path.abspath(init_from)
        config = TrainConfig.for_finetune(init["meta"]["model"],
                                          dict(options, data=data, out_dir=out_dir), init_from)
    elif saved:
        overrides = dict(options, out_dir=out_dir or os.path.dirname(os.path.abspath(resume)))
        if data is not None:
            overrides["data"] = data
        config = saved_config(saved, resume).for_resume(overrides)
    else:
        config = TrainConfig.from_dict(dict(options, data=data, out_dir=out_dir))
    return Trainer(config, text=text, checkpoint=resume, out=out, saved=saved, init=init)


def load(checkpoint, backend="auto"):
    """Load a checkpoint for sampling or evaluation; returns (model, vocab).

    The model is a CharLSTM, or a CharRNN with the cell the checkpoint records.
    Where the run kept an average of its weights (--ema), the model has the
    average: the weights that run evaluated and sampled.

    Works across backends: a model trained on the GPU loads on the CPU and back.
    """
    return model_from_saved(load_checkpoint(checkpoint), backend, source=checkpoint)


def model_from_saved(saved, backend="auto", source="checkpoint"):
    """(model, vocab) from a checkpoint already read by ``load_checkpoint``."""
    config = saved["meta"]["model"]
    vocab = Vocab.from_codes(saved["vocab_codes"])
    if config.get("vocab_size") != len(vocab):
        raise UserError(f"{source}: vocabulary has {len(vocab)} chars but the model "
                        f"expects {config.get('vocab_size')}")
    if config.get("cell", "lstm") not in CELLS:
        raise UserError(f"{source}: unknown cell {config['cell']!r}, this lstm-scratch "
                        f"knows {', '.join(CELLS)}")
    model = make_model(config, backend=backend)
    model.load_params(saved["params"] if saved.get("ema") is None else saved["ema"], source=source)
    return model, vocab
