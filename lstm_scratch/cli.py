"""``lstm-scratch train|sample|eval``: the shell face of lstm_scratch.api.

A user error prints one line, ``lstm-scratch: error: ...``, and exits 2;
a training that diverges exits 1; Ctrl-C during training saves and exits 130.
"""
import argparse
import difflib
import errno
import json
import os
import re
import sys
import time

from . import __version__
from .api import load, make_trainer, model_from_saved
from .backend import BACKEND_NAMES
from .checkpoint import atomic_write, load_checkpoint
from .config import TrainConfig, require_int
from .distributed import error_everywhere, launched
from .data import MODES, builtin_corpus_path, read_text, split_train_val
from .documents import corpus_name, is_list, read_corpus
from .errors import UserError, naming_file
from .evaluation import evaluate_windows_threaded
from .model import CELLS, DTYPES, ENGINES
from .optim import OPTIMIZERS
from .beam import beam_search
from .sampling import (BEAM_WHY_CLI, GREEDY_WHY, check_sampling_options, generate, generate_iter,
                       greedy_conflicts, refuse, resolve_prime)
from .prepared import open_corpus, prepare, prepared_val_frac
from .train import (NATS_PER_BIT, TrainingDiverged, evaluate, saved_config,
                    validation_batches)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line (with a did-you-mean for a mistyped flag)."""

    def error(self, message):
        choice = re.match(r"argument [^:]+: invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:                                      # a mistyped subcommand or --mode
            options = re.findall(r"'([^']*)'", choice.group(2))
            close = difflib.get_close_matches(choice.group(1), options, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
        if "unrecognized arguments:" in message:
            for word in message.split(":", 1)[1].split():
                close = difflib.get_close_matches(word.split("=")[0], self._all_flags(), n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        command = self.prog.replace("lstm-scratch", "").strip()
        where = f"{command}: " if command else ""
        raise UserError(f"{where}{message} (see {self.prog} --help)")

    def _all_flags(self):
        """Long flags of this parser and of its subcommands (unknown flags are
        reported by the top parser even when they follow a subcommand)."""
        flags = []
        for action in self._actions:
            flags += [s for s in action.option_strings if s.startswith("--")]
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    flags += sub._all_flags()
        return flags


def float_list(text):
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}")


def build_parser():
    parser = OneLineParser(prog="lstm-scratch",
                           description="A character-level LSTM (or GRU, or RNN) from scratch.")
    parser.add_argument("--version", action="version", version=f"lstm-scratch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    t = sub.add_parser("train", help="train on UTF-8 text files (default: built-in Shakespeare)")
    t.add_argument("data", nargs="*", help="UTF-8 text files, folders of .txt files (read "
                   "recursively, in sorted order, joined by --doc-sep), or one folder made by "
                   "prepare (default: the built-in corpus)")
    t.add_argument("--doc-sep", type=escaped, metavar="TEXT", help="joins the documents of "
                   "several files (default: a blank line, \\n\\n)")
    t.add_argument("--init-from", metavar="CKPT", help="fine-tune: a new run from this "
                   "checkpoint's weights (its average, if it kept one) and architecture, with a "
                   "fresh optimizer from step 0; characters it lacks join the vocabulary")
    t.add_argument("--out", dest="out_dir", help="run folder (default: runs/<date-time>)")
    t.add_argument("--mode", choices=MODES, help="stream (TBPTT, default) or window (Keras recipe)")
    t.add_argument("--cell", choices=CELLS, help="the recurrent cell: lstm (default), gru "
                   "(as torch.nn.GRU) or rnn (vanilla tanh RNN, as torch.nn.RNN)")
    t.add_argument("--hidden-size", type=int, help="layer width H (default 512)")
    t.add_argument("--num-layers", type=int, help="stacked recurrent layers (default 2)")
    t.add_argument("--dropout", type=float, help="drop probability after each layer (default 0.2)")
    t.add_argument("--output-dropout", type=float, metavar="P", help="dropout after the top "
                   "layer, before the softmax (default: --dropout)")
    t.add_argument("--locked-dropout", action="store_true", default=None, help="one dropout "
                   "mask per sequence, the same at every time step, for every dropout")
    t.add_argument("--weight-drop", type=float, metavar="P", help="DropConnect on the recurrent "
                   "weights Wh, one mask per batch (AWD-LSTM; default 0)")
    t.add_argument("--embedding-size", type=int, metavar="D", help="a learnt character "
                   "embedding of D features instead of one-hot input (default 0: one-hot)")
    t.add_argument("--input-dropout", type=float, metavar="P", help="dropout on the embedding's "
                   "output (needs --embedding-size)")
    t.add_argument("--embedding-dropout", type=float, metavar="P", help="drop whole rows of the "
                   "embedding, one mask per batch (needs --embedding-size)")
    t.add_argument("--tie-weights", action="store_true", default=None, help="the softmax "
                   "weights are the embedding's transpose (needs --embedding-size = --hidden-size)")
    t.add_argument("--seq-len", type=int, help="chars per chunk/window (default 100 stream, 20 window)")
    t.add_argument("--step", type=int, help="window mode: chars between windows (default 3)")
    t.add_argument("--batch-size", type=int, help="default 64 stream, 128 window")
    t.add_argument("--epochs", type=int, help="default 10")
    t.add_argument("--max-steps", type=int, help="stop after this many updates")
    t.add_argument("--max-minutes", type=float, metavar="M", help="stop once the training "
                   "steps have taken M minutes (evaluations not counted)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="rmsprop (default, Keras's), adam "
                   "or adamw (torch.optim's, equal update for update)")
    t.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    t.add_argument("--betas", type=float_list, metavar="B1,B2",
                   help="adam/adamw: decays of the means of g and g² (default 0.9,0.999)")
    t.add_argument("--weight-decay", type=float, metavar="L", help="adamw: decoupled, p -= lr·L·p "
                   "(default 0.01); rmsprop/adam: L2, g += L·p (default 0)")
    t.add_argument("--ema", type=float, metavar="DECAY", help="keep an average of the weights "
                   "(e.g. 0.999), evaluated, sampled and kept in best.npz (default 0: off)")
    t.add_argument("--clip-norm", type=float, help="global gradient-norm clip; 0 = off "
                   "(default 5 stream, off window)")
    t.add_argument("--lr-decay", type=float, help="multiply lr by this every --lr-decay-every epochs")
    t.add_argument("--lr-decay-every", type=int, help="epochs between lr decays")
    t.add_argument("--plateau-decay", type=float, help="multiply lr by this after each "
                   "evaluation without a new best validation loss (default 1: off)")
    t.add_argument("--patience", type=int, help="stop after this many evaluations in a row "
                   "without a new best validation loss (best.npz keeps the best)")
    t.add_argument("--val-frac", type=float, help="held-out tail of the text (default 0.05)")
    t.add_argument("--eval-every", type=int, help="steps between evaluations (default: each epoch)")
    t.add_argument("--eval-chars", type=int, help="validation chars scored per evaluation; "
                   "0 = all (default 1,000,000)")
    t.add_argument("--sample-temperatures", type=float_list,
                   help="samples after each epoch at these (default 0.2,0.5,1.0,1.2)")
    t.add_argument("--sample-length", type=int, help="chars per epoch sample (default 200)")
    t.add_argument("--no-samples", action="store_true", help="no samples after epochs")
    t.add_argument("--seed", type=int, help="seeds weights, dropout and batch order (default 0)")
    t.add_argument("--backend", choices=BACKEND_NAMES, help="default auto: cupy if a GPU works")
    t.add_argument("--dtype", choices=DTYPES, help="default float32")
    t.add_argument("--threads", type=int, help="CPU threads that split each batch (default, "
                   "NumPy backend: one per core, at most batch-size/8, for H >= 128 with the "
                   "Numba-compiled cell or H >= 256 without; else 1)")
    t.add_argument("--engine", choices=ENGINES, help="fast (default: fused kernels, reused "
                   "buffers) or reference (the textbook lstm_scratch/nn, to read and debug; "
                   "same numbers, slower)")
    t.add_argument("--resume", metavar="CKPT", help="continue a run from its checkpoint")

    r = sub.add_parser("prepare", help="encode a big text once into memory-mappable files "
                       "(train from the folder in bounded memory)")
    r.add_argument("text", nargs="+", help="UTF-8 text files, or folders of .txt files (read "
                   "recursively, in sorted order), joined by --doc-sep")
    r.add_argument("--doc-sep", type=escaped, default="\n\n", metavar="TEXT",
                   help="joins the documents (default: a blank line)")
    r.add_argument("--out", required=True, help="folder for vocab.json, train.bin, val.bin")
    r.add_argument("--val-frac", type=float, default=0.05, help="held-out tail (default 0.05)")

    s = sub.add_parser("sample", help="generate text from a checkpoint (text only on stdout, "
                       "or in --out FILE)")
    s.add_argument("checkpoint")
    prime = s.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="", help="text to start from")
    prime.add_argument("--prime-file", metavar="FILE", help="start from this UTF-8 file's text")
    s.add_argument("--length", type=int, default=500, help="chars to generate (default 500)")
    s.add_argument("--temperature", type=float, help="> 0 (default 1.0): lower is safer and "
                   "more repetitive, higher more surprising, with more mistakes")
    s.add_argument("--greedy", action="store_true", help="always take the most likely char")
    s.add_argument("--top-k", type=int, help="draw only among the k most likely chars")
    s.add_argument("--top-p", type=float, metavar="P", help="nucleus sampling, P in (0, 1]: "
                   "draw only among the fewest most likely chars whose probability (after "
                   "--temperature and --top-k) reaches P")
    s.add_argument("--num-samples", type=int, metavar="N", help="N samples, run as one batch")
    s.add_argument("--separator", type=escaped, metavar="TEXT", help="the line between two "
                   "samples (default ----; write --separator=TEXT for one that starts with -)")
    s.add_argument("--stop", type=escaped, metavar="TEXT", help="end each sample at its first "
                   "TEXT after the prime, kept (\\n is a newline: --stop '\\n\\n' ends at a "
                   "blank line; also \\t, \\\\)")
    s.add_argument("--seed", type=int, help="same seed (and --num-samples), same text")
    s.add_argument("--beam-width", type=int, metavar="K", help="print the most likely "
                   "continuation a beam of K finds, instead of sampling (1 = --greedy)")
    s.add_argument("--out", metavar="FILE", help="write the samples to FILE, not stdout")
    s.add_argument("--backend", choices=BACKEND_NAMES, default="auto")

    e = sub.add_parser("eval", help="validation loss of a checkpoint on held-out text")
    e.add_argument("checkpoint")
    e.add_argument("data", nargs="?", help="text file (default: the checkpoint's training file)")
    e.add_argument("--val-frac", type=float, help="held-out tail (default: the checkpoint's)")
    e.add_argument("--eval-chars", type=int, help="score only the first N held-out chars "
                   "(default: all)")
    e.add_argument("--windows", type=int, metavar="W", help="also score nanoGPT's way: the "
                   "held-out text cut into W-char windows, each from a zero state, every "
                   "char counted (nanoGPT's baby GPT: 256)")
    e.add_argument("--json", action="store_true", help="print one JSON line")
    e.add_argument("--backend", choices=BACKEND_NAMES, default="auto")

    p = sub.add_parser("plot", help="train and validation loss curves of a run (PNG)")
    p.add_argument("run_dir", help="a run folder holding metrics.jsonl")
    p.add_argument("--out", help="image file (default RUN_DIR/loss.png)")

    b = sub.add_parser("show-batch", help="draw the input 3-tensor of a real batch (PNG)")
    b.add_argument("data", nargs="?", help="UTF-8 text file (default: the built-in corpus)")
    b.add_argument("--mode", choices=MODES, default="window")
    b.add_argument("--seq-len", type=int, default=20)
    b.add_argument("--batch-size", type=int, default=8)
    b.add_argument("--step", type=int, default=3)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default="batch.png", help="image file (default batch.png)")

    v = sub.add_parser("visualize", help="a self-contained HTML page of cell activations")
    v.add_argument("checkpoint")
    source = v.add_mutually_exclusive_group()
    source.add_argument("--text", metavar="FILE", help="text to run the model over")
    source.add_argument("--prime", help="generate from this prime, then look at that text")
    v.add_argument("--length", type=int, default=1500,
                   help="chars: taken from --text (or the checkpoint's held-out text), "
                        "or generated after --prime (default 1500)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default="cells.html", help="HTML file (default cells.html)")
    v.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    return parser


def cmd_train(args):
    fields = {f for f in TrainConfig.__dataclass_fields__}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.no_samples:
        given["sample_temperatures"] = ()
    if given.get("eval_chars") == 0:
        given["eval_chars"] = None                      # the whole split
    data = given.pop("data", None) or None          # nargs="*" gives [] when none are named
    out_dir = given.pop("out_dir", None)
    if out_dir is None and not args.resume:
        out_dir = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    trainer = make_trainer(data, out_dir, resume=args.resume, **given)
    trainer.run()
    return 130 if trainer.interrupted else 0


ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def escaped(text):
    r"""A flag's text with \n, \t and \\ read as escapes: a shell passes "\n" as two chars."""
    def one(match):
        if match.group(1) not in ESCAPES:
            raise argparse.ArgumentTypeError(f"unknown escape \\{match.group(1)} "
                                             "(use \\n, \\t or \\\\)")
        return ESCAPES[match.group(1)]
    return re.sub(r"\\(.?)", one, text, flags=re.S)


def check_out_file(path):
    """Fail before sampling, not after, where ``--out`` cannot be written."""
    if path is not None and os.path.isdir(path):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)


def write_samples(texts, separator, out=None):
    """The texts, a ``separator`` line between two, a newline at the end: on stdout, or
    written atomically to the file ``out`` (then one line says so)."""
    body = f"\n{separator}\n".join(texts) + "\n"
    if out is None:
        with naming_file("standard output"):
            sys.stdout.write(body)
            sys.stdout.flush()
        return 0
    atomic_write(out, lambda f: f.write(body.encode("utf-8")))      # never half the samples
    print(f"wrote {len(texts)} sample{'s' * (len(texts) != 1)} to {out} ({len(body):,} chars)")
    return 0


def cmd_sample(args):
    if args.beam_width is not None:
        return sample_beam(args)
    if args.greedy:
        given = ["--temperature"] * (args.temperature is not None) + [
            "--" + name.replace("_", "-")
            for name in greedy_conflicts(args.top_k, args.top_p, args.num_samples)]
        refuse("sample: --greedy", given, GREEDY_WHY)
    if args.separator is not None and args.num_samples is None:
        raise UserError("sample: --separator needs --num-samples N: it is the line between samples")
    temperature = 1.0 if args.temperature is None else args.temperature
    check_sampling_options(args.length, temperature, args.greedy, args.top_k, args.top_p,
                           args.num_samples, args.stop)
    prime, what = resolve_prime(args.prime, args.prime_file)
    check_out_file(args.out)
    model, vocab = load(args.checkpoint, backend=args.backend)
    if args.num_samples is not None or args.out is not None:       # one batch, then written
        texts = generate(model, vocab, args.prime, args.length, temperature, args.greedy,
                         args.top_k, args.seed, prime_file=args.prime_file, top_p=args.top_p,
                         num_samples=args.num_samples or 1, stop=args.stop)
        separator = "----" if args.separator is None else args.separator
        return write_samples(texts, separator, args.out)
    chars = generate_iter(model, vocab, prime, args.length, temperature, args.greedy,
                          args.top_k, args.seed, what, top_p=args.top_p, stop=args.stop)
    first = next(chars, "")                             # a bad prime fails before any output
    out = sys.stdout
    every = 1 if out.isatty() else 64                   # a terminal sees each char as it comes
    with naming_file("standard output"):
        out.write(prime + first)
        for n, ch in enumerate(chars):
            out.write(ch)
            if n % every == 0:
                out.flush()
        out.write("\n")
        out.flush()
    return 0


def sample_beam(args):
    """``sample --beam-width K``: deterministic, so the sampling flags mean nothing."""
    given = [flag for flag, value in (("--temperature", args.temperature), ("--top-k", args.top_k),
                                      ("--top-p", args.top_p), ("--seed", args.seed),
                                      ("--greedy", args.greedy or None),
                                      ("--num-samples", args.num_samples), ("--stop", args.stop),
                                      ("--separator", args.separator))
             if value is not None]
    refuse("sample: --beam-width", given, BEAM_WHY_CLI)
    check_sampling_options(args.length, 1.0, True, None)
    require_int("beam_width", args.beam_width)
    prime, what = resolve_prime(args.prime, args.prime_file)
    check_out_file(args.out)
    model, vocab = load(args.checkpoint, backend=args.backend)
    text, _ = beam_search(model, vocab, prime, args.length, args.beam_width, what)
    return write_samples([prime + text], "", args.out)


def cmd_eval(args):
    saved = load_checkpoint(args.checkpoint)                # read once: config, vocab, weights
    config = saved_config(saved, args.checkpoint)
    if args.val_frac is not None:
        config.val_frac = args.val_frac
    config = config.resolved()
    if config.val_frac == 0:
        raise UserError(f"{args.checkpoint}: trained with --val-frac 0, so there is no "
                        "held-out part; pass --val-frac")
    path = args.data or config.data_path(args.checkpoint)
    fixed = prepared_val_frac(path)                     # a prepared folder's split is fixed
    if args.val_frac is None and fixed is not None:
        config.val_frac = fixed
    if args.eval_chars is not None:
        require_int("eval_chars", args.eval_chars)
    if args.windows is not None:
        require_int("windows", args.windows, 2)
    config.eval_chars = args.eval_chars                 # None: the whole split
    model, vocab = model_from_saved(saved, args.backend, source=args.checkpoint)
    _, _, val_ids = open_corpus(path, config.val_frac, vocab, config.doc_sep)
    batches = validation_batches(val_ids, config)
    windows = {}            # nanoGPT's protocol on the same chars; first, so that a
    if args.windows is not None:        # text too short for one window fails at once
        loss, n = evaluate_windows_threaded(model, val_ids[:args.eval_chars], args.windows)
        windows = dict(val_loss_windows=loss, val_bpc_windows=loss / NATS_PER_BIT,
                       windows=n // args.windows, window_chars=n)
    val_loss = evaluate(model, batches)
    chars = batches.targets_per_epoch()
    if args.json:
        print(json.dumps(dict(val_loss=val_loss, val_bpc=val_loss / NATS_PER_BIT, chars=chars,
                              **windows)))
        return 0
    print(f"val loss {val_loss:.4f} nats · {val_loss / NATS_PER_BIT:.4f} bits per char · "
          f"{chars:,} chars (last {config.val_frac:g} of {corpus_name(path)})")
    if windows:
        print(f"val loss {windows['val_loss_windows']:.4f} nats · "
              f"{windows['val_bpc_windows']:.4f} bits per char · {windows['window_chars']:,} "
              f"chars · {args.windows}-char windows from a zero state "
              f"({windows['windows']:,} windows)")
    return 0


def cmd_prepare(args):
    t0 = time.perf_counter()
    meta = prepare(args.text, args.out, args.val_frac, doc_sep=args.doc_sep)
    print(f"wrote {args.out}: {meta['train_chars']:,} train and {meta['val_chars']:,} val chars "
          f"as {meta['dtype']}, vocabulary of {len(meta['vocab'])} chars "
          f"({time.perf_counter() - t0:.1f}s); train with: lstm-scratch train {args.out}")
    return 0


def cmd_plot(args):
    from .plots import plot_metrics
    out = args.out or os.path.join(args.run_dir, "loss.png")
    with naming_file(out):
        plot_metrics(args.run_dir, out)
    print(f"wrote {out}")
    return 0


def cmd_show_batch(args):
    from .plots import batch_tensor, plot_batch
    for name in ("seq_len", "batch_size", "step"):
        require_int(name, getattr(args, name))
    path = args.data or builtin_corpus_path()
    batch = batch_tensor(read_text(path), args.mode, args.seq_len, args.batch_size,
                         args.step, args.seed)
    with naming_file(args.out):
        plot_batch(batch, args.out)
    print(f"wrote {args.out}: a {batch['onehot'].shape} one-hot batch of {path}")
    return 0


def cmd_visualize(args):
    from .visualize import page_data, render_html
    require_int("length", args.length, 2)
    saved = load_checkpoint(args.checkpoint)
    model, vocab = model_from_saved(saved, args.backend, source=args.checkpoint)
    if args.prime is not None:
        text = generate(model, vocab, args.prime, args.length, temperature=1.0, seed=args.seed)
        source = f"generated after {args.prime!r}"
    else:
        if args.text:
            name, start = args.text, 0              # as typed
            text = read_text(args.text)
            vocab.encode(text[:args.length], what=args.text)    # an error names the file
        else:                                       # the held-out tail of the training text
            config = saved_config(saved, args.checkpoint)
            path = config.data_path(args.checkpoint)
            fixed = prepared_val_frac(path)
            if fixed is not None:                       # a prepared folder: decode its val ids
                _, train_ids, val_ids = open_corpus(path, fixed, vocab)
                text, start = vocab.decode(val_ids[:args.length]), len(train_ids)
            else:
                full = read_corpus(path, config.doc_sep)
                text = split_train_val(full, config.val_frac)[1]
                start = len(full) - len(text)
            # saved as an absolute path: only its name means anything on another machine
            name = "the held-out text of " + (corpus_name(path) if is_list(path) else
                                              os.path.basename(os.path.normpath(path)))
        text = text[:args.length]
        source = f"{name}, chars {start}-{start + len(text)}"
    if len(text) < 2:
        raise UserError(f"visualize needs at least 2 characters of text, got {len(text)} "
                        f"({source}); pass --text FILE or --prime TEXT")
    html = render_html(page_data(model, vocab, text),
                       title=f"lstm-scratch: inside {os.path.basename(args.checkpoint)} ({source})")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), args.out)
    atomic_write(args.out, lambda f: f.write(html.encode("utf-8")))    # never half a page
    print(f"wrote {args.out} ({len(text):,} chars of {source})")
    return 0


COMMANDS = {"train": cmd_train, "prepare": cmd_prepare, "sample": cmd_sample, "eval": cmd_eval,
            "plot": cmd_plot, "show-batch": cmd_show_batch, "visualize": cmd_visualize}


def main(argv=None):
    size, rank = launched()                 # under mpiexec: this process's place, from its env
    try:
        args = build_parser().parse_args(argv)
        if size > 1 and args.command != "train":
            raise error_everywhere(f"only train runs on several processes; run "
                                   f"{args.command} without mpiexec (launched as {size})")
        return COMMANDS[args.command](args)
    except TrainingDiverged as exc:
        if rank == 0:
            print(f"lstm-scratch: {exc}", file=sys.stderr)
        return 1
    except UserError as exc:
        # Every process meets a bad option or file alike: one line, from rank 0. (An
        # error only one process met is agreed on, or stops all, in train.py.)
        if rank == 0:
            print(f"lstm-scratch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lstm-scratch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:                             # `lstm-scratch sample ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:                              # a file we could not write or read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lstm-scratch: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
