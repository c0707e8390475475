"""Checkpoints: one .npz of plain arrays, never pickled, written atomically.

Layout (every entry is a NumPy array of numbers or of fixed-width unicode)::

    magic           "lstm-scratch checkpoint"
    format_version  1
    gate_order      "ifgo"  (fused gate blocks; see nn/gates.py)
    meta            JSON: model and training config, progress, Generator states
    vocab           (V,) int32 code points, in id order
    param/<name>    model.params, host copies
    optim/<key>     the optimizer's state_dict() (RMSprop's, Adam's or AdamW's: the
                    training config's "optimizer" says which; none: RMSprop)
    ema/<name>      the average of the weights (--ema), if the run keeps one
    carry/h<l>, carry/c<l>   the state carried between stream chunks (no c<l>: GRU, RNN)

Loading never unpickles, and checks before it reads, as safetensors does
(see safe_npz.py): the small members first (magic, version, gate order, then
meta, at most 1 MiB), and from the model config in meta the dtype and shape
of every other member, each compared with its .npy header and the zip
directory's size before its data is read. So memory is what the model needs,
whatever the file claims (and a compressed file cannot claim a model more than
deflate's 1032:1 bigger than itself); a member the format does not name is never read.

Saving writes a temporary file in the same folder, fsyncs it, then renames
it over the target: a crash mid-write leaves the previous checkpoint whole.
"""
import json
import os
import tempfile

import numpy as np

from .backend import to_host
from .errors import UserError, naming_file
from .cells import CELLS, param_shapes
from .model import DTYPES
from .nn import GATE_ORDER
from .optim import OPTIMIZERS
from .regularisers import REGULARISERS, resolve_regularisers
from .safe_npz import SafeNpz
from .starter import checkpoint_path

MAGIC = "lstm-scratch checkpoint"
FORMAT_VERSION = 1
META_LIMIT = 1 << 20            # bytes of the meta member: JSON of a config, a few KB in practice
SMALL_LIMIT = 4096              # bytes of the magic, format_version and gate_order members
MAX_CODE_POINT = 0x10FFFF
MODEL_KEYS = ("vocab_size", "hidden_size", "num_layers", "dropout", "dtype")   # CharRNN.config,
# with "cell" too since GRU and RNN cells came (absent in older checkpoints: an LSTM), and
# the regularisers since they came (regularisers.REGULARISERS; absent: off)


def atomic_write(path, write):
    """Call ``write(file)`` on a temp file beside ``path``, then rename it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with naming_file(path, instead_of=tmp):  # the temp file's name means nothing to the user
            os.fchmod(fd, 0o666 & ~umask)       # mkstemp's 0600 is not what a plain open gives
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path, *, params, vocab, meta, optim_state=None, carry=None, ema=None):
    """Write a checkpoint.

    params : dict name -> array (host or device; copied to the host)
    vocab : data.Vocab
    meta : JSON-serialisable dict (config, progress, Generator states)
    optim_state : the optimizer's state_dict() or None
    carry : list of state tuples per layer, (h, c) or (h,), or None
    ema : dict name -> array, the average of the weights (like params), or None
    """
    arrays = {
        "magic": np.array(MAGIC),
        "format_version": np.array(FORMAT_VERSION),
        "gate_order": np.array("".join(GATE_ORDER)),
        "meta": np.array(json.dumps(meta)),
        "vocab": vocab.codes,
    }
    arrays.update({f"param/{k}": to_host(v) for k, v in params.items()})
    arrays.update({f"optim/{k}": np.asarray(v) for k, v in (optim_state or {}).items()})
    arrays.update({f"ema/{k}": to_host(v) for k, v in (ema or {}).items()})
    for l, layer in enumerate(carry or []):
        arrays.update({f"carry/{name}{l}": to_host(a) for name, a in zip("hc", layer)})
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """Read a checkpoint into plain host data; every failure is a one-line UserError.
    ``path`` is a file, or the name of a model shipped in the package (starter.py).

    Returns dict with meta (dict), vocab_codes, params, optim, carry, ema (as saved;
    ema None when the run kept no average).
    """
    path = checkpoint_path(path)            # a file, or a shipped model's name (starter.py)
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, expected a checkpoint file "
                        f"(e.g. {os.path.join(path, 'latest.npz')})")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":                # every .npz is a zip archive
            raise UserError(f"{path}: not an lstm-scratch checkpoint (expected a .npz file)")
    with SafeNpz(path) as npz:
        if "magic" not in npz.keys or str(_read(npz, "magic", "U", (), SMALL_LIMIT)) != MAGIC:
            raise UserError(f"{path}: not an lstm-scratch checkpoint (no '{MAGIC}' marker)")
        version = int(_read(npz, "format_version", "iu", (), SMALL_LIMIT))
        if version != FORMAT_VERSION:
            raise UserError(f"{path}: checkpoint format version {version}, "
                            f"this lstm-scratch reads version {FORMAT_VERSION}")
        gate_order = str(_read(npz, "gate_order", "U", (), SMALL_LIMIT))
        if gate_order != "".join(GATE_ORDER):
            raise UserError(f"{path}: gate order {gate_order}, expected {''.join(GATE_ORDER)}")
        meta = _meta(npz)
        expected = _expected_members(npz, meta)
        headers = {key: _header(npz, key, *spec) for key, spec in expected.items()}
        arrays = {key: npz.read(key, header) for key, header in headers.items()}
    codes = arrays.pop("vocab")
    surrogate = (codes >= 0xD800) & (codes <= 0xDFFF)      # not characters: print() fails on them
    if codes.size and (codes.min() < 0 or codes.max() > MAX_CODE_POINT or surrogate.any()
                       or (codes[1:] <= codes[:-1]).any()):
        raise UserError(f"{path}: member 'vocab': expected increasing Unicode code points")
    groups = {"param": {}, "optim": {}, "carry": {}, "ema": {}}
    for key, value in arrays.items():
        group, _, name = key.partition("/")
        groups[group][name] = value
    saved = groups["carry"]
    carry = [tuple(saved[f"{name}{l}"] for name in "hc" if f"{name}{l}" in saved)
             for l in range(sum(name.startswith("h") for name in saved))]
    return dict(meta=meta, vocab_codes=codes, params=groups["param"],
                optim=groups["optim"], carry=carry or None, ema=groups["ema"] or None)


def _meta(npz):
    """The meta member, as a dict whose model config is checked."""
    try:
        meta = json.loads(str(_read(npz, "meta", "U", (), META_LIMIT)))
    except json.JSONDecodeError as exc:
        raise UserError(f"{npz.path}: damaged metadata ({exc})") from None
    model = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(model, dict) or not isinstance(meta.get("train"), dict):
        raise UserError(f"{npz.path}: damaged metadata (expected 'model' and 'train' configs)")
    if not set(MODEL_KEYS) <= set(model) <= {*MODEL_KEYS, "cell", *REGULARISERS}:
        raise UserError(f"{npz.path}: damaged metadata (model config has "
                        f"{', '.join(sorted(model))}; expected {', '.join(MODEL_KEYS)}, cell "
                        f"and the regularisers {', '.join(REGULARISERS)})")
    if model.get("cell", "lstm") not in CELLS:
        raise UserError(f"{npz.path}: damaged metadata (model cell is {model['cell']!r}, "
                        f"expected one of {', '.join(CELLS)})")
    dropout = model["dropout"]
    if type(dropout) not in (int, float) or not 0 <= dropout < 1:
        raise UserError(f"{npz.path}: damaged metadata (model dropout is {dropout!r})")
    for name, most in (("vocab_size", MAX_CODE_POINT + 1), ("hidden_size", None),
                       ("num_layers", None)):
        value = model.get(name)
        if type(value) is not int or value < 1 or (most and value > most):
            raise UserError(f"{npz.path}: damaged metadata (model {name} is {value!r})")
    try:                                        # the regularisers' values, and that they fit
        resolve_regularisers({k: model[k] for k in REGULARISERS if k in model},
                             model["hidden_size"], dropout, model.get("cell", "lstm"))
    except UserError as exc:
        raise UserError(f"{npz.path}: damaged metadata (model {exc})") from None
    optimizer = meta["train"].get("optimizer", "rmsprop")
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise UserError(f"{npz.path}: damaged metadata (optimizer {optimizer!r}, expected one "
                        f"of {', '.join(OPTIMIZERS)})")
    if model.get("dtype") not in DTYPES:
        raise UserError(f"{npz.path}: damaged metadata (model dtype is {model.get('dtype')!r}, "
                        f"expected one of {', '.join(DTYPES)})")
    return meta


def _expected_members(npz, meta):
    """key -> (dtype kinds, shape, itemsize or None) of every member to read. The
    optimizer state and the carried state are optional, but whole if present."""
    model = meta["model"]
    H, L, V = model["hidden_size"], model["num_layers"], model["vocab_size"]
    if 3 * L + 2 > len(npz.keys):           # before listing 3L names: L may be 2^40
        raise UserError(f"{npz.path}: damaged metadata (a model of {L} layers, but the file "
                        f"holds {len(npz.keys)} arrays)")
    size = np.dtype(model["dtype"]).itemsize
    shapes = param_shapes(model)
    expected = {"vocab": ("iu", (V,), None)}
    expected.update({f"param/{k}": ("f", s, size) for k, s in shapes.items()})
    if any(key.startswith("optim/") for key in npz.keys):
        optimizer = OPTIMIZERS[meta["train"].get("optimizer", "rmsprop")]
        expected.update({f"optim/{slot}.{k}": ("f", s, size)
                         for slot in optimizer.SLOTS for k, s in shapes.items()})
        expected.update({f"optim/{k}": ("fiu", (), None) for k in optimizer.SCALARS
                         if k not in optimizer.OPTIONAL or f"optim/{k}" in npz.keys})
    if any(key.startswith("ema/") for key in npz.keys):
        expected.update({f"ema/{k}": ("f", s, size) for k, s in shapes.items()})
    if any(key.startswith("carry/") for key in npz.keys):
        B = meta["train"].get("batch_size")
        if type(B) is not int or B < 1:
            raise UserError(f"{npz.path}: damaged metadata (carried state, but batch_size "
                            f"is {B!r})")
        state = "hc" if model.get("cell", "lstm") == "lstm" else "h"    # (h, c) or (h,)
        expected.update({f"carry/{name}{l}": ("f", (B, H), size)
                         for l in range(L) for name in state})
    return expected


def _header(npz, key, kinds, shape, itemsize=None, limit=None):
    """``key``'s header, checked: present, at most ``limit`` bytes, a plain dtype of
    one of ``kinds`` (and ``itemsize``), ``shape``, and the size in the zip directory."""
    if key not in npz.keys:
        raise UserError(f"{npz.path}: lacks member {key!r}; the file is damaged or was not "
                        "written by lstm-scratch")
    if limit is not None and npz.size(key) > limit:
        raise npz.error(key, f"is {npz.size(key):,} bytes, at most {limit:,} expected")
    header = npz.header(key)
    dtype = header.dtype
    names = {"U": "text", "i": "integers", "u": "integers", "f": "floats"}
    if dtype.kind not in kinds or dtype.fields is not None or dtype.subdtype is not None \
            or (itemsize is not None and dtype.itemsize != itemsize):
        want = " or ".join(sorted({names[k] for k in kinds}))
        if itemsize is not None:
            want += f" of {itemsize} bytes (the model's dtype)"
        raise npz.error(key, f"dtype {dtype.str}, expected {want}")
    if header.shape != shape:
        raise npz.error(key, f"shape {header.shape}, expected {shape} for the model in the "
                        "checkpoint's meta")
    npz.check_size(key, header)
    return header


def _read(npz, key, kinds, shape, limit):
    """A small member, checked (see :func:`_header`), then read."""
    return npz.read(key, _header(npz, key, kinds, shape, limit=limit))
