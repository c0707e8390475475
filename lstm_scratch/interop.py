"""Move weights between CharRNN and PyTorch's recurrent module + nn.Linear (no torch import).

The PyTorch model this maps to, by ``model.cell``::

    lstm = torch.nn.LSTM(V, H, num_layers=L, batch_first=True)   # keys "lstm.*"
    gru = torch.nn.GRU(V, H, num_layers=L, batch_first=True)     # keys "gru.*"
    rnn = torch.nn.RNN(V, H, num_layers=L, batch_first=True)     # keys "rnn.*" (tanh)
    fc = torch.nn.Linear(H, V)                                   # keys "fc.*"

fed one-hot (B, T, V). Gate orders agree (LSTM i, f, g, o; GRU r, z, n).
PyTorch stores weights transposed (``weight_ih_l{l}`` is (G·H, D) = Wxˡ.T).

A model with an embedding (``embedding_size`` D) maps to one more module in
front, fed the ids instead of one-hot rows, and the recurrent module reads D::

    embedding = torch.nn.Embedding(V, D)                         # key "embedding.weight" = E
    lstm = torch.nn.LSTM(D, H, num_layers=L, batch_first=True)

Tied (``tie_weights``), ``fc.weight`` is E too, as in PyTorch's word language
model (``decoder.weight = encoder.weight``): both keys are exported, and on
import they must be equal. Weight drop, locked and embedding dropout act in
training only, so they need nothing in PyTorch's modules.

Biases: the LSTM and the RNN add PyTorch's two biases at the same place, so
one is enough: b = b_ih + b_hh on import; on export b_ih = b, b_hh = 0. Their
*gradients* export db to both, since ∂L/∂b_ih = ∂L/∂b_hh = ∂L/∂b. The GRU's
b_hh sits inside r ⊙ (W_hn h + b_hn), so it is a parameter of its own:
bx = b_ih and bh = b_hh, one to one, gradients too.

Note: PyTorch's ``dropout`` acts between layers but not after the last one,
whereas CharRNN drops after every layer; the two agree when dropout is off.
"""
import numpy as np

from .backend import to_host
from .errors import UserError

# Our bias name -> the PyTorch biases it maps to, per cell.
_BIASES = {"lstm": {"b": ("bias_ih", "bias_hh")},
           "rnn": {"b": ("bias_ih", "bias_hh")},
           "gru": {"bx": ("bias_ih",), "bh": ("bias_hh",)}}


def torch_names(num_layers, cell="lstm", embedding=False):
    """The state-dict keys, in order, of the PyTorch model above."""
    names = ["embedding.weight"] if embedding else []
    for l in range(num_layers):
        names += [f"{cell}.weight_ih_l{l}", f"{cell}.weight_hh_l{l}",
                  f"{cell}.bias_ih_l{l}", f"{cell}.bias_hh_l{l}"]
    return names + ["fc.weight", "fc.bias"]


def to_torch(model, tensors=None):
    """Our arrays -> dict of PyTorch names -> new host NumPy arrays (C-ordered copies:
    training on does not change them).

    model : CharRNN (any cell)
    tensors : None to export ``model.params``; or a grads dict (keys of
        ``model.params``) to export gradients in PyTorch's layout
    """
    if model.zoneout_cell or model.zoneout_hidden:
        raise UserError(f"a model with zoneout has no PyTorch twin: nn.{model.cell.upper()} "
                        "cannot mix the previous state into every step by the zoneout rates")
    grads = tensors is not None
    src = {name: to_host(a) for name, a in (tensors if grads else model.params).items()}
    cell, out = model.cell, {}
    if model.embedding_size:
        out["embedding.weight"] = _c_copy(src["E"])                        # (V, D)
    for l in range(model.num_layers):
        out[f"{cell}.weight_ih_l{l}"] = _c_copy(src[f"Wx{l}"].T)           # (GH, D)
        out[f"{cell}.weight_hh_l{l}"] = _c_copy(src[f"Wh{l}"].T)           # (GH, H)
        for ours, theirs in _BIASES[cell].items():
            b = src[f"{ours}{l}"]
            out[f"{cell}.{theirs[0]}_l{l}"] = _c_copy(b)
            if len(theirs) == 2:        # one b for two: all of it in b_ih, its gradient in both
                out[f"{cell}.{theirs[1]}_l{l}"] = _c_copy(b) if grads else np.zeros_like(b)
    # (V, H); tied, E itself (its gradient, which sums both uses, for both names)
    out["fc.weight"] = _c_copy(src["E"] if model.tie_weights else src["Wy"].T)
    out["fc.bias"] = _c_copy(src["by"])
    return {k: out[k] for k in torch_names(model.num_layers, cell, bool(model.embedding_size))}


def _c_copy(a):
    """A C-ordered copy, always: as PyTorch lays out parameters, and never a view of
    the model (Wh is column-major inside it, so Wh.T is already C-ordered and
    ``ascontiguousarray`` would hand out a live view)."""
    return np.array(a, order="C", copy=True)


def load_torch(model, state_dict):
    """Copy a PyTorch state dict (tensors or arrays, names as in :func:`torch_names`)
    into ``model.params`` in place. Shapes are checked; dtype becomes the model's."""
    cell, D = model.cell, model.embedding_size
    missing = [k for k in torch_names(model.num_layers, cell, bool(D)) if k not in state_dict]
    if missing:
        module = dict(lstm="nn.LSTM", gru="nn.GRU", rnn="nn.RNN")[cell]
        embedding = f"nn.Embedding(V, {D}) as 'embedding.', " if D else ""
        raise UserError(f"state dict lacks {', '.join(missing)}: expected {embedding}"
                        f"{module}({D or 'V'}, H, num_layers={model.num_layers}) as '{cell}.' "
                        "and nn.Linear as 'fc.'")
    sd = {k: np.asarray(_host(v), dtype=np.float64) for k, v in state_dict.items()}
    new = {}
    if D:
        new["E"] = sd["embedding.weight"]
    if model.tie_weights and not np.array_equal(sd["fc.weight"], sd["embedding.weight"]):
        raise UserError("state dict: the model ties its softmax to its embedding, but "
                        "fc.weight differs from embedding.weight")
    for l in range(model.num_layers):
        new[f"Wx{l}"] = sd[f"{cell}.weight_ih_l{l}"].T
        new[f"Wh{l}"] = sd[f"{cell}.weight_hh_l{l}"].T
        for ours, theirs in _BIASES[cell].items():
            new[f"{ours}{l}"] = sum(sd[f"{cell}.{t}_l{l}"] for t in theirs)
    if not model.tie_weights:
        new["Wy"] = sd["fc.weight"].T
    new["by"] = sd["fc.bias"]
    model.load_params(new, source="state dict")


def _host(v):
    """A torch tensor (any device) or an array -> something np.asarray takes."""
    if hasattr(v, "detach"):                       # torch.Tensor
        return v.detach().cpu().numpy()
    if hasattr(v, "__cuda_array_interface__"):     # cupy.ndarray
        return to_host(v)
    return v
