"""Checkpoints: one .npz of plain arrays, never pickled, written atomically.

Layout (every entry is a NumPy array of numbers or of fixed-width unicode)::

    magic           "lstm-scratch checkpoint"
    format_version  1
    gate_order      "ifgo"  (fused gate blocks; see nn/gates.py)
    meta            JSON: model and training config, progress, Generator states
    vocab           (V,) int32 code points, in id order
    param/<name>    model.params, host copies
    optim/<key>     RMSprop.state_dict()
    carry/h<l>, carry/c<l>   the state carried between stream chunks (no c<l>: GRU, RNN)

Loading uses ``allow_pickle=False``, so a file holding an object array is
refused instead of executing code. Saving writes a temporary file in the
same folder, fsyncs it, then renames it over the target: a crash mid-write
leaves the previous checkpoint whole.
"""
import json
import os
import tempfile
import zipfile

import numpy as np

from .backend import to_host
from .errors import UserError
from .nn import GATE_ORDER

MAGIC = "lstm-scratch checkpoint"
FORMAT_VERSION = 1


def atomic_write(path, write):
    """Call ``write(file)`` on a temp file beside ``path``, then rename it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)           # mkstemp's 0600 is not what a plain open gives
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path, *, params, vocab, meta, optim_state=None, carry=None):
    """Write a checkpoint.

    params : dict name -> array (host or device; copied to the host)
    vocab : data.Vocab
    meta : JSON-serialisable dict (config, progress, Generator states)
    optim_state : RMSprop.state_dict() or None
    carry : list of state tuples per layer, (h, c) or (h,), or None
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
    for l, layer in enumerate(carry or []):
        arrays.update({f"carry/{name}{l}": to_host(a) for name, a in zip("hc", layer)})
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path):
    """Read a checkpoint into plain host data; every failure is a one-line UserError.

    Returns dict with meta (dict), vocab_codes, params, optim, carry (as saved).
    """
    if not os.path.exists(path):
        raise UserError(f"{path}: no such checkpoint")
    if os.path.isdir(path):
        raise UserError(f"{path}: is a directory, expected a checkpoint file "
                        f"(e.g. {os.path.join(path, 'latest.npz')})")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":                # every .npz is a zip archive
            raise UserError(f"{path}: not an lstm-scratch checkpoint (expected a .npz file)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise UserError(f"{path}: holds pickled objects; refusing to load it "
                            "(checkpoints never execute code)") from None
        raise UserError(f"{path}: not a readable .npz checkpoint ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz checkpoint ({exc})") from None
    if str(arrays.get("magic", "")) != MAGIC:
        raise UserError(f"{path}: not an lstm-scratch checkpoint (no '{MAGIC}' marker)")
    version = int(arrays["format_version"])
    if version != FORMAT_VERSION:
        raise UserError(f"{path}: checkpoint format version {version}, "
                        f"this lstm-scratch reads version {FORMAT_VERSION}")
    if str(arrays["gate_order"]) != "".join(GATE_ORDER):
        raise UserError(f"{path}: gate order {arrays['gate_order']}, expected "
                        f"{''.join(GATE_ORDER)}")
    try:
        meta = json.loads(str(arrays["meta"]))
    except (KeyError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: damaged metadata ({exc})") from None
    groups = {"param": {}, "optim": {}, "carry": {}}
    for key, value in arrays.items():
        group, _, name = key.partition("/")
        if group in groups:
            groups[group][name] = value
    saved = groups["carry"]
    carry = [tuple(saved[f"{name}{l}"] for name in "hc" if f"{name}{l}" in saved)
             for l in range(sum(name.startswith("h") for name in saved))]
    return dict(meta=meta, vocab_codes=arrays["vocab"], params=groups["param"],
                optim=groups["optim"], carry=carry or None)
