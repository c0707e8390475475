"""Training configuration: one dataclass, its defaults, and its checks."""
import dataclasses
import numbers
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

import numpy as np

from .backend import BACKEND_NAMES
from .data import MODES, builtin_corpus_path
from .documents import DOC_SEP, is_list
from .errors import UserError
from .model import CELLS, DTYPES, ENGINES
from .optim import OPTIMIZERS
from .regularisers import REGULARISERS, resolve_regularisers

# Defaults that depend on the mode: the Keras recipe, or char-rnn's stream.
MODE_DEFAULTS = {
    "window": dict(seq_len=20, batch_size=128, clip_norm=0.0),
    "stream": dict(seq_len=100, batch_size=64, clip_norm=5.0),
}

# TrainConfig.data of a run trained on a string passed to lstm_scratch.train().
TEXT_GIVEN = "<text passed to lstm_scratch.train()>"

MAX_THREADS = 1024

# What a checkpoint fixes: resuming may not change these.
FIXED_ON_RESUME = ("mode", "cell", "hidden_size", "num_layers", "dropout", "seq_len", "step",
                   "batch_size", "val_frac", "seed", "dtype", "optimizer", "betas", "ema",
                   "doc_sep", *REGULARISERS)

# What a checkpoint fine-tuned from (init_from) fixes: the shapes of its weights, and
# their dtype. Its dropout rates are only the defaults of the new run.
FIXED_ON_FINETUNE = ("cell", "hidden_size", "num_layers", "dtype", "embedding_size",
                     "tie_weights")

# AdamW's weight decay when none is given (torch.optim.AdamW's); the others: none.
ADAMW_WEIGHT_DECAY = 1e-2


def flag(name):
    """A TrainConfig field as the CLI spells it: seq_len -> --seq-len."""
    return "--" + name.replace("_", "-")


def require_int(name, value, minimum=1):
    """A one-line error unless ``value`` is an int >= ``minimum``; ``name`` is the
    option's Python name (seq_len), shown as the flag (--seq-len)."""
    if not (isinstance(value, int) and not isinstance(value, bool) and value >= minimum):
        raise UserError(f"{flag(name)} must be an integer >= {minimum}, got {value!r}")


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


@dataclass
class TrainConfig:
    # a UTF-8 text file, a folder of them, or a list of files and folders (documents.py);
    # None = the built-in corpus
    data: Union[str, List[str], None] = None
    doc_sep: str = DOC_SEP              # joins the documents of several files (a blank line)
    init_from: Optional[str] = None     # a checkpoint to fine-tune: its weights, a fresh run
    out_dir: Optional[str] = None       # checkpoints and metrics.jsonl; None = keep nothing
    mode: str = "stream"                # "stream" (TBPTT) or "window" (the Keras recipe)
    cell: str = "lstm"                  # "lstm", "gru" or "rnn" (a checkpoint without one: lstm)
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.2
    seq_len: Optional[int] = None       # None: 100 (stream) or 20 (window)
    step: int = 3                       # window mode: chars between window starts
    reset_every: int = 0                # stream mode: each row's state from zero every K chunks (0 = never)
    batch_size: Optional[int] = None    # None: 64 (stream) or 128 (window)
    epochs: int = 10
    max_steps: Optional[int] = None     # stop after this many updates, whatever the epoch
    max_minutes: Optional[float] = None  # stop once training has taken this long (steps only)
    optimizer: str = "rmsprop"          # "rmsprop" (Keras's), "adam" or "adamw" (torch.optim's)
    lr: float = 1e-3
    rho: float = 0.9                    # RMSprop's decay of its mean of g²
    betas: Tuple[float, float] = (0.9, 0.999)   # Adam's and AdamW's
    weight_decay: Optional[float] = None    # None: 0.01 for adamw (decoupled), else 0 (L2)
    ema: float = 0.0                    # decay of an average of the weights (0 = off): evaluated, sampled
    clip_norm: Optional[float] = None   # 0 = off; None: the mode's, 5.0 (stream) or 0 (window)
    lr_decay: float = 1.0               # lr *= lr_decay every lr_decay_every epochs
    lr_decay_every: Optional[int] = None
    plateau_decay: float = 1.0          # lr *= plateau_decay after each evaluation that is not a new best
    patience: Optional[int] = None      # stop after this many evaluations in a row without a new best
    val_frac: float = 0.05
    eval_every: Optional[int] = None    # steps between evaluations; None = each epoch end
    eval_chars: Optional[int] = 1_000_000   # validation chars scored per evaluation; None = all
    sample_temperatures: Tuple[float, ...] = field(default=(0.2, 0.5, 1.0, 1.2))
    sample_length: int = 200
    seed: int = 0
    backend: str = "auto"
    dtype: str = "float32"
    threads: Optional[int] = None       # CPU worker threads splitting each batch; None = auto
    engine: str = "fast"                # "fast" (lstm_scratch.engine) or "reference" (the textbook, nn/)
    tf32: bool = False                  # float32 products in TF32 on the GPU's tensor cores
    # The regularisers (regularisers.py), all off by default:
    embedding_size: int = 0             # D > 0: a learnt embedding E (V, D) instead of one-hot
    tie_weights: bool = False           # the head's weights are Eᵀ (needs D = hidden_size)
    weight_drop: float = 0.0            # DropConnect on every Wh, one mask per batch
    locked_dropout: bool = False        # every dropout mask one per sequence, the same at every t
    input_dropout: float = 0.0          # on the embedding's output
    embedding_dropout: float = 0.0      # whole rows of E, one mask per batch
    output_dropout: Optional[float] = None  # after the top layer; None: --dropout
    zoneout_cell: float = 0.0           # the LSTM's c keeps its value with this probability
    zoneout_hidden: float = 0.0         # the same for h (nn/zoneout.py)

    def resolved(self):
        """A copy with the mode-dependent defaults filled in, checked."""
        if self.mode not in MODES:
            raise UserError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        filled = {k: v for k, v in MODE_DEFAULTS[self.mode].items() if getattr(self, k) is None}
        config = dataclasses.replace(self, **filled)
        temperatures = config.sample_temperatures
        if not isinstance(temperatures, (list, tuple)) or not all(map(_is_number, temperatures)):
            raise UserError(f"--sample-temperatures must be numbers, got {temperatures!r}")
        config.sample_temperatures = tuple(float(t) for t in temperatures)
        betas = config.betas
        if not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(map(_is_number, betas)):
            raise UserError(f"--betas must be two numbers, got {betas!r}")
        config.betas = tuple(float(b) for b in betas)
        if config.weight_decay is None:
            config.weight_decay = ADAMW_WEIGHT_DECAY if config.optimizer == "adamw" else 0.0
        if config.output_dropout is None and _is_number(config.dropout):
            config.output_dropout = float(config.dropout)
        config.check()
        return config

    def check(self):
        def need(ok, flag, expected, value):
            if not ok:
                raise UserError(f"--{flag} must be {expected}, got {value!r}")
        for name in ("hidden_size", "num_layers", "seq_len", "step", "batch_size", "epochs",
                     "sample_length"):
            require_int(name, getattr(self, name), 0 if name == "sample_length" else 1)
        require_int("seed", self.seed, 0)                      # NumPy's SeedSequence takes >= 0
        require_int("reset_every", self.reset_every, 0)
        need(self.reset_every == 0 or self.mode == "stream", "reset-every",
             "0 in window mode (every window starts from the zero state already)",
             self.reset_every)
        for name in ("max_steps", "eval_every", "eval_chars", "lr_decay_every", "patience", "threads"):
            if getattr(self, name) is not None:
                require_int(name, getattr(self, name))
        # each thread gets its own buffers: a typo like 100000 would hang making them
        need(self.threads is None or self.threads <= MAX_THREADS, "threads",
             f"at most {MAX_THREADS}", self.threads)
        for name in ("out_dir", "init_from"):     # (open() would take an int as a file descriptor)
            value = getattr(self, name)
            need(value is None or isinstance(value, (str, os.PathLike)), name.replace("_", "-"),
                 "a path", value)
        paths = self.data if is_list(self.data) else [self.data]
        need(self.data is None or (paths and all(isinstance(p, (str, os.PathLike))
                                                 for p in paths)),
             "data", "a path or a non-empty list of paths", self.data)
        need(isinstance(self.doc_sep, str), "doc-sep", "a str", self.doc_sep)
        for name in ("dropout", "val_frac", "lr", "rho", "clip_norm", "lr_decay"):
            # a str from a notebook or a damaged checkpoint: one line, not a TypeError
            need(_is_number(getattr(self, name)), name.replace("_", "-"), "a number",
                 getattr(self, name))
        need(0.0 <= self.dropout < 1.0, "dropout", "in [0, 1)", self.dropout)
        need(0.0 <= self.val_frac < 1.0, "val-frac", "in [0, 1)", self.val_frac)
        need(self.lr > 0, "lr", "> 0", self.lr)
        need(0.0 <= self.rho < 1.0, "rho", "in [0, 1)", self.rho)
        need(self.clip_norm is not None and self.clip_norm >= 0, "clip-norm", ">= 0 (0 = off)",
             self.clip_norm)
        need(0.0 < self.lr_decay <= 1.0, "lr-decay", "in (0, 1]", self.lr_decay)
        need(0.0 < self.plateau_decay <= 1.0, "plateau-decay", "in (0, 1]", self.plateau_decay)
        need(self.val_frac > 0 or (self.plateau_decay == 1.0 and self.patience is None),
             "val-frac", "> 0 for --plateau-decay and --patience (they watch the validation "
             "loss)", self.val_frac)
        need(all(t > 0 for t in self.sample_temperatures), "sample-temperatures",
             "numbers > 0", self.sample_temperatures)
        need(self.backend in BACKEND_NAMES, "backend", "one of " + ", ".join(BACKEND_NAMES),
             self.backend)
        need(self.dtype in DTYPES, "dtype", "one of " + ", ".join(DTYPES), self.dtype)
        need(self.cell in CELLS, "cell", "one of " + ", ".join(CELLS), self.cell)
        need(self.engine in ENGINES, "engine", "one of " + ", ".join(ENGINES), self.engine)
        need(isinstance(self.tf32, bool), "tf32", "True or False", self.tf32)
        need(not (self.tf32 and self.backend == "numpy"), "tf32",
             "off with backend numpy (TF32 is the GPU's: the CPU multiplies float32 in float32)",
             self.tf32)
        need(self.optimizer in OPTIMIZERS, "optimizer", "one of " + ", ".join(OPTIMIZERS),
             self.optimizer)
        need(self.max_minutes is None or (_is_number(self.max_minutes) and self.max_minutes > 0),
             "max-minutes", "a number > 0", self.max_minutes)
        for name in ("weight_decay", "ema"):
            need(_is_number(getattr(self, name)), name.replace("_", "-"), "a number",
                 getattr(self, name))
        need(self.weight_decay >= 0, "weight-decay", ">= 0", self.weight_decay)
        need(all(0.0 <= b < 1.0 for b in self.betas), "betas", "two numbers in [0, 1)",
             self.betas)
        default = {f.name: f.default for f in dataclasses.fields(self)}
        if self.optimizer == "rmsprop" and tuple(self.betas) != default["betas"]:
            raise UserError("--betas are Adam's and AdamW's; --optimizer rmsprop has --rho "
                            "(pass --optimizer adam or adamw)")
        if self.optimizer != "rmsprop" and self.rho != default["rho"]:
            raise UserError(f"--rho is RMSprop's; --optimizer {self.optimizer} takes --betas "
                            "B1,B2")
        need(0.0 <= self.ema < 1.0, "ema", "a decay in [0, 1) (0 = off; 0.999, say)", self.ema)
        resolve_regularisers({name: getattr(self, name) for name in REGULARISERS},
                             self.hidden_size, self.dropout, self.cell, spell=flag)

    def data_path(self, source):
        """The training file, folder or list of them (documents.py; open_corpus and
        read_corpus take either), for commands that re-read it; ``source`` names the
        checkpoint."""
        if self.data == TEXT_GIVEN:
            raise UserError(f"{source}: was trained on text passed to lstm_scratch.train(), "
                            "not a file; name the text file to use")
        return self.data or builtin_corpus_path()

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["sample_temperatures"] = list(self.sample_temperatures)
        d["betas"] = list(self.betas)
        if is_list(self.data):
            d["data"] = [os.fspath(p) for p in self.data]
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)

    def for_resume(self, overrides):
        """This (saved) config with ``overrides`` applied; the model and data
        layout may not change."""
        for name, value in overrides.items():
            if name in FIXED_ON_RESUME and _differs(value, getattr(self, name)):
                raise UserError(f"{flag(name)} {_shown(value)} conflicts with the "
                                f"checkpoint's {_shown(getattr(self, name))}: a resumed run "
                                f"keeps its model and data layout")
        return dataclasses.replace(self, **overrides)

    @classmethod
    def for_finetune(cls, model, options, source):
        """A fresh run's config (``options``: TrainConfig fields) with the architecture
        of the checkpoint ``source``, whose model config is ``model``: its cell, sizes
        and dtype (an option that contradicts them is a UserError) and, unless given,
        its dropout rates (and output_dropout follows a given dropout, as in a fresh run)."""
        shaped = {**REGULARISERS, "cell": "lstm", **model}      # old checkpoints: the defaults
        for name in FIXED_ON_FINETUNE:
            if name in options and _differs(options[name], shaped[name]):
                raise UserError(f"{flag(name)} {options[name]} conflicts with {source}'s "
                                f"{shaped[name]}: fine-tuning keeps the checkpoint's model")
        kept = [name for name in ("dropout", *REGULARISERS) if name not in options]
        if "dropout" in options and "output_dropout" in kept:
            kept.remove("output_dropout")
        return cls.from_dict(dict(options, **{name: shaped[name] for name in
                                              (*FIXED_ON_FINETUNE, *kept)}))


def _shown(value):
    """An option's value in a one-line message: a str with a newline (--doc-sep) quoted."""
    return repr(value) if isinstance(value, str) and not value.isprintable() else value


def _differs(given, saved):
    """A resume option that is not what the checkpoint has (betas: a list there)."""
    if isinstance(given, (list, tuple)) and isinstance(saved, (list, tuple)):
        return list(given) != list(saved)
    return given != saved
