"""``lstm-scratch train|sample|eval``: the shell face of lstm_scratch.api.

A user error prints one line, ``lstm-scratch: error: ...``, and exits 2;
a training that diverges exits 1; Ctrl-C during training saves and exits 130.
"""
import errno
import json
import os
import sys
import time

from .api import load, make_trainer, model_from_saved
from .checkpoint import atomic_write, load_checkpoint
from .cli_parser import build_parser
from .config import TrainConfig, require_int
from .distributed import error_everywhere, launched
from .data import builtin_corpus_path, read_text, split_train_val
from .documents import corpus_name, is_list, read_corpus
from .errors import UserError, naming_file
from .evaluation import evaluate_windows_threaded
from .beam import beam_search
from .sampling import (BEAM_WHY_CLI, GREEDY_WHY, check_sampling_options, generate, generate_iter,
                       greedy_conflicts, refuse, resolve_prime)
from .sampling_backend import sampling_model
from .prepared import open_corpus, prepare, prepared_val_frac
from .train import (NATS_PER_BIT, TrainingDiverged, evaluate, saved_config,
                    validation_batches)


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


def say(line):
    """A line for the user on stderr (None: nothing)."""
    if line is not None:
        print(line, file=sys.stderr, flush=True)


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
    model, vocab, chosen = sampling_model(load_checkpoint(args.checkpoint), args.backend,
                                          args.checkpoint, args.num_samples)
    if args.num_samples is not None or args.out is not None:       # one batch, then written
        texts = generate(model, vocab, args.prime, args.length, temperature, args.greedy,
                         args.top_k, args.seed, prime_file=args.prime_file, top_p=args.top_p,
                         num_samples=args.num_samples or 1, stop=args.stop)
        say(chosen)
        separator = "----" if args.separator is None else args.separator
        return write_samples(texts, separator, args.out)
    chars = generate_iter(model, vocab, prime, args.length, temperature, args.greedy,
                          args.top_k, args.seed, what, top_p=args.top_p, stop=args.stop)
    first = next(chars, "")                             # a bad prime fails before any output
    say(chosen)                                         # auto: which backend, on stderr
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
    check_out_file(args.out)
    atomic_write(args.out, lambda f: f.write(html.encode("utf-8")))    # never half a page
    print(f"wrote {args.out} ({len(text):,} chars of {source})")
    return 0


def cmd_export(args):
    from .webpage import export_html
    if not args.html.lower().endswith((".html", ".htm")):
        raise UserError(f"export: --html {args.html}: expected a file name ending in .html "
                        "(or .htm)")                # never over a checkpoint or a text
    check_out_file(args.html)
    saved = load_checkpoint(args.checkpoint)
    model, vocab = model_from_saved(saved, "numpy", source=args.checkpoint)
    progress = saved["meta"].get("progress", {})
    meta = {key: progress.get(key) for key in ("val_loss", "step", "epoch")
            if isinstance(progress.get(key), (int, float))}
    title = args.title
    if title is None:
        title = f"lstm-scratch: {os.path.basename(os.path.normpath(args.checkpoint))}"
    info = export_html(model, vocab, args.html, title=title, meta=meta, weights=args.weights)
    print(f"wrote {args.html} ({info['bytes']:,} bytes, {info['weights']} weights, "
          f"{info['params']:,} params): open it in a browser")
    return 0


COMMANDS = {"train": cmd_train, "prepare": cmd_prepare, "sample": cmd_sample, "eval": cmd_eval,
            "plot": cmd_plot, "show-batch": cmd_show_batch, "visualize": cmd_visualize,
            "export": cmd_export}


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
