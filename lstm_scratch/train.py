"""The training loop: batches, optimizer steps, evaluation, samples, checkpoints.

One Trainer serves the CLI, the Python API and demo.py. Everything that
decides what happens next is in the checkpoint, so a resumed run is the run
that would have happened: parameters, the optimizer's running means (RMSprop's,
Adam's or AdamW's), the average of the weights (--ema), the step and
position in the epoch, the recurrent state carried between stream chunks, and the
dropout Generator's state. (Window order is a permutation seeded by (seed,
epoch), so it needs no saved state.)

A run can instead start from another checkpoint's weights (``init_from``,
finetune.py): a new run, from step 0, over a vocabulary grown by the new text.
"""
import json
import contextlib
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from .checkpoint import load_checkpoint
from .backend import tf32_products, use_gpu
from .engine import graphs
from .data import Vocab, make_batches, split_train_val
from .documents import corpus_files, is_list, shown_path
from .distributed import DistributedDataParallel, current_world
from .errors import UserError, naming_file, stream_name
from .evaluation import evaluate, validation_batches  # noqa: F401  (also train.evaluate, as before)
from .model import CELLS, make_model
from .ema import EMA
from .finetune import start_from
from .optim import OPTIMIZERS, RMSprop
from .regularisers import REGULARISERS
from .prepared import is_prepared, open_corpus
from .engine.fused import describe as describe_cell
from .engine.parallel import ThreadedDataParallel, auto_workers
from .progress import Progress
from .run_state import prepare_out_dir, restore_run, save_run, saved_config  # noqa: F401
from .sampling import generate

NATS_PER_BIT = math.log(2.0)


class TrainingDiverged(UserError):
    """The loss or a gradient stopped being finite."""


def describe_engine(model):
    """Which cell runs, in words, for the banner."""
    if model.engine == "reference":
        return "the textbook cell (--engine reference: lstm_scratch/nn, as written)"
    graphed = ", each time loop a CUDA graph" if graphs.enabled(model.backend.xp) else ""
    if model.cell != "lstm":
        return (f"the engine's {model.cell.upper()} layer (lstm_scratch/engine/{model.cell}.py)"
                + graphed)
    return describe_cell(model.backend.xp, model.dtype) + graphed


class Trainer:
    """Train a CharRNN on ``text`` (or the config's file) as ``config`` says.

    checkpoint : a path to resume from (its config must equal ``config`` on the
        fields that fix the model and data layout; see TrainConfig.for_resume)
    out : where progress and samples go (a terminal gets a live line)
    saved : that checkpoint as ``load_checkpoint`` returned it, if already read
    init : the checkpoint ``config.init_from`` names, as ``load_checkpoint`` returned
        it, if already read: a new run starts from its weights (finetune.py). A
        resumed run continues and never reads it.
    """

    def __init__(self, config, text=None, checkpoint=None, out=None, saved=None, init=None):
        self.world = current_world()        # one process, or this one's place under mpiexec
        error = None
        try:
            self._setup(config, text, checkpoint, out, saved, init)
        except BaseException as exc:        # under mpiexec, every process must hear of it
            error = exc
        error = self.world.agree(error)
        if error is not None:
            raise error

    def _setup(self, config, text, checkpoint, out, saved, init):
        world = self.world
        self.config = config = config.resolved()
        self.out = (out or sys.stdout) if world.rank == 0 else open(os.devnull, "w")
        if checkpoint and saved is None:
            saved = load_checkpoint(checkpoint)
        if saved or not config.init_from:
            init = None                 # resumed, a fine-tuned run goes on from its own
        elif init is None:
            init = load_checkpoint(config.init_from)
        base = saved or init
        vocab = Vocab.from_codes(base["vocab_codes"]) if base else None
        old_vocab, grow = vocab, init is not None   # fine-tuning: the new text's chars join
        if text is None:                # text files, or a prepared folder (memory-mapped)
            vocab, train_ids, val_ids = open_corpus(config.data_path(checkpoint or "this run"),
                                                    config.val_frac, vocab, config.doc_sep, grow)
        else:
            vocab = vocab.grown(text) if grow else vocab or Vocab.from_text(text)
            train_ids, val_ids = split_train_val(vocab.encode(text, what="text"), config.val_frac)
        self.vocab, self.train_ids = vocab, train_ids
        self.val_chars = len(val_ids)
        self.batches = make_batches(train_ids, config.mode, config.seq_len, config.batch_size,
                                    config.step, config.seed)
        self.val_batches = validation_batches(val_ids, config)
        if world.size > config.batch_size:
            raise UserError(f"--batch-size {config.batch_size} is less than the {world.size} "
                            f"processes: each needs at least one row")
        if world.size > 1 and config.backend != "numpy":
            use_gpu(world.local_rank)                           # one GPU per process
        try:
            self.model = make_model(dict(vocab_size=len(self.vocab), cell=config.cell,
                                         hidden_size=config.hidden_size,
                                         num_layers=config.num_layers, dropout=config.dropout,
                                         dtype=config.dtype,
                                         **{k: getattr(config, k) for k in REGULARISERS}),
                                    backend=config.backend, seed=config.seed, engine=config.engine)
        except (MemoryError, ValueError) as exc:                # NumPy's, for a huge model
            raise UserError(f"cannot make a model of {config.num_layers} layer(s) of "
                            f"hidden size {config.hidden_size}: {exc}") from None
        self.new_chars = None           # fine-tuning: the chars the checkpoint lacked
        if init:                        # before the optimizer and the average see the weights
            self.new_chars = start_from(self.model, init, old_vocab, self.vocab,
                                        config.init_from)
        rows = -(-config.batch_size // world.size)
        workers = config.threads or auto_workers(self.model, rows, cores=world.cores())
        if self.model.backend.name != "numpy":
            workers = 1                 # one thread drives the GPU (--threads is the CPU's)
        # Its threads start with the first step and end with run().
        self.runner = ThreadedDataParallel(self.model, workers)   # loss_and_grads on N cores
        if world.size > 1:
            world.share_cores()             # BLAS too: oversubscribed, a step is 100x slower
            self.runner = DistributedDataParallel(self.runner, world)
            world.broadcast(self.model.params)                  # identical initial weights
        self.optimizer = make_optimizer(config, self.model.params, self.runner.map)
        self.ema = EMA(self.model.params, config.ema, self.runner.map) if config.ema else None
        self.step, self.epoch, self.batch_index = 0, 0, 0
        self.carry, self.best_val, self.elapsed = None, math.inf, 0.0
        self.history, self.interrupted = [], False
        self.lowest_val, self.stale_evals = math.inf, 0     # for --plateau-decay, --patience
        if saved:
            self._restore(saved, checkpoint)
        if config.out_dir and world.rank == 0:
            prepare_out_dir(config.out_dir, resuming=bool(saved))

    # -- the loop --------------------------------------------------------------
    def total_steps(self):
        per_epoch = self.batches.batches_per_epoch * self.config.epochs
        return min(per_epoch, self.config.max_steps or per_epoch)

    def done(self):
        return (self.step >= self.total_steps() or self.epoch >= self.config.epochs
                or self.out_of_patience() or self.out_of_time())

    def out_of_time(self):
        """--max-minutes: the steps so far (evaluation not counted, a resumed run's
        earlier steps counted) took that long. Unlike every other stop, this one
        depends on the machine's speed, so where a run stops is not reproducible."""
        limit = self.config.max_minutes
        return limit is not None and self.elapsed >= 60.0 * limit

    def out_of_patience(self):
        return bool(self.config.patience) and self.stale_evals >= self.config.patience

    def run(self):
        """Train until the epochs or max_steps are used up, or Ctrl-C. Returns history.

        An OSError names its file: checkpoints and metrics.jsonl name theirs; any
        other is from writing progress and samples to ``out``."""
        with naming_file(stream_name(self.out)):
            return self._run()

    def _run(self):
        cfg, model, world = self.config, self.model, self.world
        procs = f" on {world.size} processes," if world.size > 1 else ""
        self._print(f"training a {model.num_layers}-layer {CELLS[model.cell].title} of "
                    f"{model.num_params():,} parameters on {model.backend.name}{procs} "
                    f"with {self.runner.workers} worker thread(s){' each' if procs else ''}, "
                    f"{describe_engine(model)} "
                    f"({cfg.mode} mode, vocabulary of {len(self.vocab)} chars, "
                    f"{self.batches.batches_per_epoch} batches per epoch)")
        if self.new_chars is not None:
            added = (f"{len(self.new_chars)} new char(s) {self.new_chars!r} join its vocabulary"
                     if self.new_chars else "no new chars")
            self._print(f"fine-tuning {cfg.init_from}: its weights, a fresh optimizer from "
                        f"step 0; {added}")
        if is_list(cfg.data) or (cfg.data and os.path.isdir(cfg.data)
                                 and not is_prepared(cfg.data)):
            files = [shown_path(f) for f in corpus_files(cfg.data)]     # say which, in order
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
            self._print(f"text: {len(files)} file(s), {shown}, joined by "
                        f"{cfg.doc_sep!r}: {len(self.train_ids):,} chars to train on, "
                        f"{self.val_chars:,} held out")
        if cfg.tf32:
            self._print("tf32: float32 products in TF32 on the GPU's tensor cores"
                        if model.backend.name == "cupy" else
                        "tf32: no GPU here, so full float32 (TF32 is the GPU's)")
        self._print("config: " + json.dumps(cfg.to_dict()))
        progress = Progress(self.out, self.total_steps(), start_step=self.step)
        try:
            with _StopOnSigint() as sigint, tf32_products(model.backend, cfg.tf32):
                self._loop(sigint, progress)        # (TF32: CuPy's cuBLAS handle, for the run)
        except BaseException as exc:
            if world.size > 1 and not getattr(exc, "everywhere", False):
                world.stop_all(exc)             # the others wait in a collective: stop them
            raise
        finally:
            progress.close()           # leave the terminal on a fresh line, even on an error
            self.runner.close()        # a notebook calling ls.train() again keeps no idle threads
        if self.interrupted:
            where = f"; saved {self._latest_path()}" if cfg.out_dir else ""
            self._print(f"interrupted at step {self.step}{where}")
        elif self.out_of_time() and self.step < self.total_steps():
            self._print(f"stopped at step {self.step}: --max-minutes {cfg.max_minutes:g} "
                        f"of training used")
        elif self.out_of_patience():
            self._print(f"stopped early at step {self.step}: no new best validation loss in "
                        f"{cfg.patience} evaluations (best {self.lowest_val:.4f} nats)")
        return self.history

    def _loop(self, sigint, progress):
        """Steps until done or Ctrl-C; evaluates, samples and saves on schedule."""
        cfg = self.config
        losses, chars, train_time = [], 0, 0.0
        self.runner.local_stop = lambda: sigint.stop
        while not self.done():
            t0 = time.perf_counter()
            inputs, targets = self.batches.batch(self.epoch, self.batch_index)
            loss = self._train_step(inputs, targets)
            dt = time.perf_counter() - t0
            losses.append(loss)
            chars += inputs.size
            train_time += dt
            self.elapsed += dt
            if cfg.max_minutes is not None:     # every process stops by rank 0's clock
                self.elapsed = self.world.rank0(self.elapsed)
            epoch_end = self.batch_index == 0
            stop = self._stop_requested(sigint)
            eval_due = bool(cfg.eval_every and self.step % cfg.eval_every == 0)
            progress.update(self.step, self._epoch_float(), loss, chars / train_time)
            if epoch_end or eval_due or self.done() or stop:
                self._report(float(np.mean(losses)), chars / train_time, progress,
                             scheduled=epoch_end or eval_due)
                losses, chars, train_time = [], 0, 0.0
            if epoch_end:
                self._end_of_epoch()
            elif self.done():                       # --max-steps mid-epoch: still end on samples
                self._samples(f"step {self.step} (epoch {self._epoch_float():.2f})")
            if stop:
                self.interrupted = True
                break
            if epoch_end or eval_due or self.done():
                self._save()
        if self.interrupted:
            self._save()

    def _stop_requested(self, sigint):
        """Ctrl-C asked to stop; on several processes, as agreed in the step's all-reduce,
        so that all stop (and save) after the same step."""
        return self.runner.stop if self.world.size > 1 else sigint.stop

    def _train_step(self, inputs, targets):
        stream = self.batches.mode == "stream"
        carry = self.carry if stream else None
        if carry is not None and self.config.reset_every:
            carry = self._reset_rows(carry, len(inputs))
        loss, grads, state = self.runner.loss_and_grads(inputs, targets, carry)
        try:
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss is {loss}")
            self.optimizer.step(grads)              # refuses non-finite gradients untouched
            if self.ema is not None:
                self.ema.update(self.model.params)
        except FloatingPointError as exc:
            kept = (f"; the last good checkpoint is {self._latest_path()}"
                    if self.config.out_dir and os.path.exists(self._latest_path()) else "")
            error = TrainingDiverged(f"training stopped at step {self.step + 1}: {exc}{kept}; "
                                     "try a lower --lr or a --clip-norm")
            error.everywhere = True             # the loss and gradients are all-reduced
            raise error from None
        self.step += 1
        self.carry = state if stream else None
        self.batch_index += 1
        if self.batch_index == self.batches.batches_per_epoch:
            self.epoch, self.batch_index, self.carry = self.epoch + 1, 0, None
        return loss

    def _reset_rows(self, carry, batch_size):
        """--reset-every K: row r of the batch starts chunk b from the zero state
        when (r + b) % K == 0, so every row starts again once every K chunks and
        1/K of the rows do at each step. It depends only on the row and the chunk,
        so a resumed run, and any number of processes, reset the same rows.
        ``carry`` holds this process's rows; a new list, the old one untouched."""
        lo, hi = self.world.rows(batch_size)
        keep = (np.arange(lo, hi) + self.batch_index) % self.config.reset_every != 0
        if keep.all():
            return carry
        xp = self.model.backend.xp
        keep = xp.asarray(keep[:, None], dtype=carry[0][0].dtype)
        return [tuple(a * keep for a in layer) for layer in carry]

    def _epoch_float(self):
        return self.epoch + self.batch_index / self.batches.batches_per_epoch

    def _report(self, train_loss, chars_per_s, progress, scheduled=True):
        """Log the losses; only an evaluation on schedule (not one at Ctrl-C or at
        --max-steps) moves --plateau-decay and --patience, so that a run stopped
        and resumed is the run that was never stopped."""
        record = dict(step=self.step, epoch=round(self._epoch_float(), 4),
                      train_loss=train_loss, val_loss=None, val_bpc=None,
                      chars_per_s=round(chars_per_s, 1), elapsed_s=round(self.elapsed, 2),
                      lr=self.optimizer.lr, world_size=self.world.size)
        if self.val_batches is not None:
            with self.averaged():
                val = evaluate(self.runner, self.val_batches)
            record.update(val_loss=val, val_bpc=val / NATS_PER_BIT)
            if scheduled:
                self._watch_plateau(val)
        self.history.append(record)
        progress.report(record)
        if self.config.out_dir and self.world.rank == 0:
            path = os.path.join(self.config.out_dir, "metrics.jsonl")
            with naming_file(path), open(path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def _watch_plateau(self, val):
        """After an evaluation that is no new best: --plateau-decay cuts the lr,
        and --patience counts towards stopping."""
        if val < self.lowest_val:
            self.lowest_val, self.stale_evals = val, 0
        else:
            self.stale_evals += 1
            self.optimizer.lr *= self.config.plateau_decay

    def _end_of_epoch(self):
        cfg = self.config
        if cfg.lr_decay_every and self.epoch % cfg.lr_decay_every == 0:
            self.optimizer.lr *= cfg.lr_decay
        self._samples(f"epoch {self.epoch}")

    def _samples(self, when):
        """Samples at the configured temperatures from a random 40-char prime of the text."""
        cfg = self.config
        if not cfg.sample_temperatures or not cfg.sample_length or self.world.rank != 0:
            return
        rng = np.random.default_rng([cfg.seed, self.epoch, 1])    # samples leave training alone
        start = int(rng.integers(0, max(1, len(self.train_ids) - 40)))
        prime = self.vocab.decode(self.train_ids[start:start + 40])
        self._print(f"----- {when} samples, prime: {prime!r}")
        with self.averaged():
            for temperature in cfg.sample_temperatures:
                text = generate(self.model, self.vocab, prime, cfg.sample_length, temperature,
                                seed=int(rng.integers(2**31)))
                self._print(f"----- temperature {temperature:g}:\n{text}")

    def averaged(self):
        """A context in which the model holds the average of its weights (--ema), the
        weights a run evaluates and samples; without an average, nothing changes."""
        return contextlib.nullcontext() if self.ema is None else self.ema.applied(self.model.params)

    # -- checkpoints -------------------------------------------------------------
    def _latest_path(self):
        return os.path.join(self.config.out_dir, "latest.npz")

    def _save(self):
        save_run(self)

    def _restore(self, saved, checkpoint):
        restore_run(self, saved, checkpoint)

    def _print(self, line):
        print(line, file=self.out, flush=True)


def make_optimizer(config, params, map_fn=None):
    """The optimizer ``config`` (a resolved TrainConfig) names, over ``params``."""
    if config.optimizer == "rmsprop":
        return RMSprop(params, config.lr, config.rho, 1e-7, config.clip_norm, map_fn,
                       weight_decay=config.weight_decay)
    return OPTIMIZERS[config.optimizer](params, config.lr, config.betas, 1e-8,
                                        config.weight_decay, config.clip_norm, map_fn)


class _StopOnSigint:
    """Ctrl-C asks the loop to stop after the current step (and save);
    a second Ctrl-C interrupts at once."""

    def __enter__(self):
        self.stop = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False
