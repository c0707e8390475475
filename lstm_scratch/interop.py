"""Move weights between CharLSTM and PyTorch's nn.LSTM + nn.Linear (no torch import).

The PyTorch model this maps to::

    lstm = torch.nn.LSTM(V, H, num_layers=L, batch_first=True)  # fed one-hot (B, T, V)
    fc = torch.nn.Linear(H, V)

Both use the gate order i, f, g, o. PyTorch stores weights transposed
(``weight_ih_l{l}`` is (4H, D) = Wxˡ.T) and has two biases where one is
enough: b = b_ih + b_hh. Exporting parameters writes b_ih = b, b_hh = 0.
Exporting *gradients* writes db to both, since ∂L/∂b_ih = ∂L/∂b_hh = ∂L/∂b.

Note: nn.LSTM's ``dropout`` acts between layers but not after the last one,
whereas CharLSTM drops after every layer; the two agree when dropout is off.
"""
import numpy as np

from .backend import to_host
from .errors import UserError


def torch_names(num_layers):
    """The state-dict keys, in order, of the PyTorch model above."""
    names = []
    for l in range(num_layers):
        names += [f"lstm.weight_ih_l{l}", f"lstm.weight_hh_l{l}",
                  f"lstm.bias_ih_l{l}", f"lstm.bias_hh_l{l}"]
    return names + ["fc.weight", "fc.bias"]


def to_torch(model, tensors=None):
    """Our arrays -> dict of PyTorch names -> new host NumPy arrays (C-ordered copies:
    training on does not change them).

    model : CharLSTM
    tensors : None to export ``model.params``; or a grads dict (keys of
        ``model.params``) to export gradients in PyTorch's layout
    """
    grads = tensors is not None
    src = {name: to_host(a) for name, a in (tensors if grads else model.params).items()}
    out = {}
    for l in range(model.num_layers):
        out[f"lstm.weight_ih_l{l}"] = _c_copy(src[f"Wx{l}"].T)              # (4H, D)
        out[f"lstm.weight_hh_l{l}"] = _c_copy(src[f"Wh{l}"].T)              # (4H, H)
        out[f"lstm.bias_ih_l{l}"] = _c_copy(src[f"b{l}"])
        out[f"lstm.bias_hh_l{l}"] = _c_copy(src[f"b{l}"]) if grads else np.zeros_like(src[f"b{l}"])
    out["fc.weight"] = _c_copy(src["Wy"].T)                                 # (V, H)
    out["fc.bias"] = _c_copy(src["by"])
    return out


def _c_copy(a):
    """A C-ordered copy, always: as PyTorch lays out parameters, and never a view of
    the model (Wh is column-major inside it, so Wh.T is already C-ordered and
    ``ascontiguousarray`` would hand out a live view)."""
    return np.array(a, order="C", copy=True)


def load_torch(model, state_dict):
    """Copy a PyTorch state dict (tensors or arrays, names as in :func:`torch_names`)
    into ``model.params`` in place. Shapes are checked; dtype becomes the model's."""
    missing = [k for k in torch_names(model.num_layers) if k not in state_dict]
    if missing:
        raise UserError(f"state dict lacks {', '.join(missing)}: expected nn.LSTM(V, H, "
                        f"num_layers={model.num_layers}) as 'lstm.' and nn.Linear as 'fc.'")
    sd = {k: np.asarray(_host(v), dtype=np.float64) for k, v in state_dict.items()}
    new = {}
    for l in range(model.num_layers):
        new[f"Wx{l}"] = sd[f"lstm.weight_ih_l{l}"].T
        new[f"Wh{l}"] = sd[f"lstm.weight_hh_l{l}"].T
        new[f"b{l}"] = sd[f"lstm.bias_ih_l{l}"] + sd[f"lstm.bias_hh_l{l}"]
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
