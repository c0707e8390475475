"""What a run keeps on disk, and takes back on resume: everything that decides what
happens next (see train.py), in a checkpoint (checkpoint.py holds its format).

:func:`save_run` and :func:`restore_run` are the Trainer's two halves of it;
:func:`saved_config` reads the training config back; :func:`prepare_out_dir`
guards the run folder.
"""
import math
import os

from .checkpoint import atomic_write, save_checkpoint
from .config import TrainConfig
from .errors import UserError
from .regularisers import REGULARISERS


def save_run(trainer):
    """Write latest.npz (rank 0), and best.npz too when this step's evaluation is a new best."""
    if not trainer.config.out_dir:
        return
    carry = trainer.world.gather_rows(trainer.carry)      # every process's rows, on rank 0
    last = trainer.history[-1] if trainer.history else {}
    meta = dict(model=trainer.model.config, train=trainer.config.to_dict(),
                progress=dict(step=trainer.step, epoch=trainer.epoch, batch_index=trainer.batch_index,
                              best_val=None if math.isinf(trainer.best_val) else trainer.best_val,
                              elapsed_s=trainer.elapsed, val_loss=last.get("val_loss"),
                              stale_evals=trainer.stale_evals,
                              plateau_best=None if math.isinf(trainer.lowest_val)
                              else trainer.lowest_val,
                              ema_updates=None if trainer.ema is None else trainer.ema.updates),
                rng=dict(dropout=trainer.model.dropout_rng.bit_generator.state))
    latest = trainer._latest_path()
    if trainer.world.rank == 0:
        save_checkpoint(latest, params=trainer.model.params, vocab=trainer.vocab, meta=meta,
                        optim_state=trainer.optimizer.state_dict(), carry=carry,
                        ema=None if trainer.ema is None else trainer.ema.state_dict())
    val = last.get("val_loss")
    if val is not None and val < trainer.best_val and last.get("step") == trainer.step:
        trainer.best_val = val
        if trainer.world.rank != 0:
            return
        with open(latest, "rb") as src:
            data = src.read()
        atomic_write(os.path.join(trainer.config.out_dir, "best.npz"), lambda f: f.write(data))


def restore_run(trainer, saved, checkpoint):
    """Continue where the checkpoint stopped (loaded and shape-checked already)."""
    if not saved["optim"]:
        raise UserError(f"{checkpoint}: holds no optimizer state, so a run cannot "
                        "continue from it (sample or evaluate it, or start a run from its "
                        "weights with --init-from)")
    m = trainer.model
    m.load_params(saved["params"], source=checkpoint)
    try:
        trainer.optimizer.load_state_dict(saved["optim"])
    except UserError as exc:
        raise UserError(f"{checkpoint}: {exc}") from None
    if trainer.config.lr != saved["meta"]["train"].get("lr"):
        trainer.optimizer.lr = trainer.config.lr                  # --lr given on resume wins
    trainer.optimizer.clip_norm = trainer.config.clip_norm
    trainer.optimizer.weight_decay = trainer.config.weight_decay  # --weight-decay on resume wins
    if trainer.ema is not None:
        if saved.get("ema") is None:
            raise UserError(f"{checkpoint}: holds no weight average, but its run keeps "
                            "one (--ema); the file is damaged")
        try:
            trainer.ema.load_state_dict(saved["ema"],
                                     _count(saved["meta"]["progress"]["ema_updates"],
                                            "ema_updates"))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{checkpoint}: damaged metadata, cannot resume "
                            f"({type(exc).__name__}: {exc})") from None
    try:                                                    # the progress part of meta
        progress = saved["meta"]["progress"]
        trainer.step, trainer.epoch, trainer.batch_index = (
            _count(progress[k], k) for k in ("step", "epoch", "batch_index"))
        if trainer.batch_index >= trainer.batches.batches_per_epoch:
            raise ValueError(f"batch_index {trainer.batch_index} is past the epoch's end")
        trainer.elapsed = float(progress["elapsed_s"])
        trainer.best_val = math.inf if progress["best_val"] is None else float(progress["best_val"])
        # The best of the scheduled evaluations, this step's included: best_val is
        # written before this step's evaluation counts, and counts one at Ctrl-C.
        # Checkpoints older than plateau_best have best_val alone.
        plateau_best = progress.get("plateau_best", trainer.best_val)
        trainer.lowest_val = math.inf if plateau_best is None else float(plateau_best)
        trainer.stale_evals = _count(progress.get("stale_evals", 0), "stale_evals")
        m.dropout_rng.bit_generator.state = saved["meta"]["rng"]["dropout"]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise UserError(f"{checkpoint}: damaged metadata, cannot resume "
                        f"({type(exc).__name__}: {exc})") from None
    if saved["carry"] is not None:                  # this process's rows of it
        lo, hi = trainer.world.rows(trainer.config.batch_size)
        trainer.carry = [tuple(m.backend.asarray(a[lo:hi], m.dtype) for a in layer)
                      for layer in saved["carry"]]


def prepare_out_dir(out_dir, resuming):
    """Create the run folder; refuse to train over another run's checkpoint."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UserError(f"{out_dir}: exists and is not a directory; choose another --out")
    latest = os.path.join(out_dir, "latest.npz")
    if not resuming and os.path.exists(latest):
        raise UserError(f"{out_dir}: already holds a run ({latest}); continue it with "
                        f"--resume {latest}, or choose another --out")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot create the output directory: {exc.strerror}") from None


def _count(value, name):
    if type(value) is not int or not 0 <= value < 2**53:
        raise ValueError(f"{name} is {value!r}, expected a count")
    return value


def saved_config(saved, source="checkpoint"):
    """The TrainConfig stored in a checkpoint already read by ``load_checkpoint``
    (``source`` names it in errors)."""
    train = dict(saved["meta"]["train"])
    if train.get("clip_norm", 0) is None:
        train["clip_norm"] = 0.0        # older files saved "off" as null, here the mode's default
    model = saved["meta"]["model"]                          # checked by load_checkpoint
    for name in ("hidden_size", "num_layers", "dropout", "dtype", *REGULARISERS):
        if name in model and train.get(name, model[name]) != model[name]:
            raise UserError(f"{source}: damaged metadata: the training config's {name} is "
                            f"{train.get(name)!r}, the model's {model[name]!r}")
    if train.get("output_dropout") is None:     # older files: the top layer had --dropout
        train["output_dropout"] = model.get("output_dropout", model["dropout"])
    return TrainConfig.from_dict(train)
