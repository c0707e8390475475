"""The command line's grammar: every subcommand and flag of ``lstm-scratch``, and
the parser that makes each mistake one line (cli.py runs what it parses)."""
import argparse
import difflib
import re

from . import __version__
from .backend import BACKEND_NAMES
from .data import MODES
from .errors import UserError
from .model import CELLS, DTYPES, ENGINES
from .optim import OPTIMIZERS
from .starter import SHIPPED
from .webpage import WEIGHT_FORMATS

CHECKPOINT_HELP = f"a checkpoint file, or a shipped model: {', '.join(SHIPPED)}"


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
                   f"checkpoint's (or a shipped model's: {', '.join(SHIPPED)}) weights (its "
                   "average, if it kept one) and architecture, with a fresh optimizer from "
                   "step 0; characters it lacks join the vocabulary")
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
    t.add_argument("--zoneout-cell", type=float, metavar="Z", help="zoneout on the LSTM's "
                   "cell: each unit keeps its previous value with probability Z at each step "
                   "(Krueger et al. 2016; default 0)")
    t.add_argument("--zoneout-hidden", type=float, metavar="Z", help="zoneout on the hidden "
                   "state h (every cell), as --zoneout-cell (default 0)")
    t.add_argument("--seq-len", type=int, help="chars per chunk/window (default 100 stream, 20 window)")
    t.add_argument("--reset-every", type=int, metavar="K", help="stream mode: every K chunks, "
                   "each row's carried state starts again from zero, the rows staggered (1/K "
                   "of them at each step), so that the network also learns the zero state "
                   "that eval --windows and sampling start from (default 0: never)")
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
    t.add_argument("--tf32", action=argparse.BooleanOptionalAction, default=None,
                   help="on the GPU, multiply float32 in TF32 on the tensor cores (as cuDNN "
                   "does by default): faster, about 3 significant digits per product "
                   "(default off; --no-tf32 turns a resumed run's off)")
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
    t.add_argument("--resume", metavar="CKPT", help="continue a run from its checkpoint "
                   "(latest.npz or best.npz of its folder)")

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
    s.add_argument("checkpoint", help=CHECKPOINT_HELP)
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
    e.add_argument("checkpoint", help=CHECKPOINT_HELP)
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
    v.add_argument("checkpoint", help=CHECKPOINT_HELP)
    source = v.add_mutually_exclusive_group()
    source.add_argument("--text", metavar="FILE", help="text to run the model over")
    source.add_argument("--prime", help="generate from this prime, then look at that text")
    v.add_argument("--length", type=int, default=1500,
                   help="chars: taken from --text (or the checkpoint's held-out text), "
                        "or generated after --prime (default 1500)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--out", default="cells.html", help="HTML file (default cells.html)")
    v.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    x = sub.add_parser("export", help="one self-contained web page that runs the model in "
                       "the browser (no Python, no network)")
    x.add_argument("checkpoint", help=CHECKPOINT_HELP)
    x.add_argument("--html", required=True, metavar="FILE", help="the page to write")
    x.add_argument("--weights", choices=WEIGHT_FORMATS, default="float32", help="float32 "
                   "(default: the page's numbers are the model's) or float16 (half the file; "
                   "probabilities move by ~2e-4)")
    x.add_argument("--title", help="the model's name on the page (default: "
                   "lstm-scratch: and the checkpoint's file name)")
    return parser


ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def escaped(text):
    r"""A flag's text with \n, \t and \\ read as escapes: a shell passes "\n" as two chars."""
    def one(match):
        if match.group(1) not in ESCAPES:
            raise argparse.ArgumentTypeError(f"unknown escape \\{match.group(1)} "
                                             "(use \\n, \\t or \\\\)")
        return ESCAPES[match.group(1)]
    return re.sub(r"\\(.?)", one, text, flags=re.S)
