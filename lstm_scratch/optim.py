"""RMSprop, with optional clipping of the global gradient norm.

For every parameter p with gradient g (Keras's and PyTorch's RMSprop)::

    v ← ρ v + (1 - ρ) g²
    p ← p - lr g / (√v + ε)

With ``clip_norm`` > 0, every g is first scaled by min(1, clip_norm / ‖g‖),
where ‖g‖ is the norm of all gradients together. "No clipping" has one
spelling everywhere: 0 (``--clip-norm 0``, ``ls.train(clip_norm=0)``, the
saved config and optimizer state). None is read as 0 here, and so is the
-1.0 that older checkpoints saved.
"""
import numpy as np

from .backend import array_module, to_host
from .errors import UserError
from .engine.fused_cpu import rmsprop_kernel


class RMSprop:
    """Updates a dict of live parameter arrays in place.

    params : dict name -> array (the model's ``params``)
    lr : learning rate; rho : decay of the running mean of g²; eps : added to √v
    clip_norm : the largest global gradient norm let through; 0 = no clipping
    map_fn : optional parallel ``map(fn, items)`` (e.g. ThreadedDataParallel.map)
        to update slices of the parameters on several cores
    Defaults are Keras's (lr 1e-3, rho 0.9, eps 1e-7); with ``alpha=rho`` they
    match ``torch.optim.RMSprop`` exactly.
    """

    def __init__(self, params, lr=1e-3, rho=0.9, eps=1e-7, clip_norm=0.0, map_fn=None):
        if not lr > 0:
            raise UserError(f"lr must be > 0, got {lr!r}")
        if not 0.0 <= rho < 1.0:
            raise UserError(f"rho must be in [0, 1), got {rho!r}")
        if not eps > 0:
            raise UserError(f"eps must be > 0, got {eps!r}")
        clip_norm = 0.0 if clip_norm is None else clip_norm
        if not clip_norm >= 0:
            raise UserError(f"clip_norm must be >= 0 (0 = no clipping), got {clip_norm!r}")
        self.params = params
        self.map_fn = map_fn
        self.lr, self.rho, self.eps = float(lr), float(rho), float(eps)
        self.clip_norm = float(clip_norm)
        self.v = {name: array_module(p).zeros_like(p) for name, p in params.items()}
        self._scratch = {}          # per parameter, made when the NumPy update first needs it
        self.steps = 0

    def step(self, grads):
        """Apply one update. ``grads`` is not modified. Returns the global
        gradient norm before clipping, as a float.

        Raises FloatingPointError, with every parameter untouched, when a
        gradient is not finite.
        """
        xp = array_module(next(iter(self.params.values())))
        flat_g = [g.ravel(order="K") for g in grads.values()]  # views, whatever the layout
        norm = float(np.sqrt(sum(float(xp.vdot(g, g)) for g in flat_g)))
        if not np.isfinite(norm):
            raise FloatingPointError(f"gradient norm is {norm}")
        scale = 1.0
        if self.clip_norm and norm > self.clip_norm:
            scale = self.clip_norm / norm
        work = []
        for name, p in self.params.items():
            flat = _flat_views(p, self.v[name], grads[name])
            work += [(name, flat, chunk) for chunk in (_chunks(p.size) if flat else [None])]
        list((self.map_fn or map)(lambda item: self._update(*item, grads, scale), work))
        self.steps += 1
        return norm

    def _update(self, name, flat, chunk, grads, scale):
        """The update of one chunk of parameter ``name``: ``flat`` holds 1-D views of
        p, v, g in memory order, ``chunk`` a slice of them. Without them (layouts
        that differ), the whole array at once."""
        p, v, g = (self.params[name], self.v[name], grads[name]) if flat is None else \
            (a[chunk] for a in flat)
        xp = array_module(p)
        kernel = rmsprop_kernel(p.dtype) if xp is np and flat is not None else None
        if kernel is not None:                  # the same, compiled (engine/fused_cpu.py)
            f = p.dtype.type
            kernel(p, v, g, f(scale), f(self.lr), f(self.rho), f(1.0 - self.rho), f(self.eps))
            return
        if flat is None:
            tmp = xp.empty_like(p)
        else:
            if name not in self._scratch:       # (a race between workers only makes two)
                self._scratch[name] = xp.empty(flat[0].size, p.dtype)
            tmp = self._scratch[name][chunk]
        if scale != 1.0:
            g = g * p.dtype.type(scale)
        # In place, into buffers made once: these arrays are as big as the model.
        v *= self.rho
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.rho
        v += tmp                                            # v ← ρ v + (1-ρ) g²
        xp.sqrt(v, out=tmp)
        tmp += self.eps
        xp.divide(g, tmp, out=tmp)
        tmp *= self.lr
        p -= tmp                                            # p ← p - lr g / (√v + ε)

    def state_dict(self):
        """Everything needed to resume exactly, as host NumPy arrays and numbers."""
        state = {f"v.{name}": to_host(v) for name, v in self.v.items()}
        state.update(lr=self.lr, rho=self.rho, eps=self.eps, steps=self.steps,
                     clip_norm=float(self.clip_norm or 0.0))
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (arrays move to the params' backend)."""
        for name, v in self.v.items():
            saved = np.asarray(state[f"v.{name}"])
            if saved.shape != v.shape:
                raise UserError(f"optimizer state v.{name} has shape {saved.shape}, "
                                f"expected {v.shape}")
            v[...] = array_module(v).asarray(saved, dtype=v.dtype)
        self.lr, self.rho, self.eps = float(state["lr"]), float(state["rho"]), float(state["eps"])
        self.steps = int(state["steps"])
        self.clip_norm = max(0.0, float(state["clip_norm"]))     # older files: -1.0 = off


def _flat_views(*arrays):
    """The arrays as 1-D views, if all have one shape and are C-contiguous (the
    model's parameters and gradients are), else None.

    Element k of each view is then the same entry of every array: the update
    can walk them as flat memory, in chunks, whatever their shapes.
    """
    if all(a.shape == arrays[0].shape and a.flags["C_CONTIGUOUS"] for a in arrays):
        return [a.reshape(-1) for a in arrays]
    return None


def _chunks(size, max_elements=1 << 18):
    """Slices of about ``max_elements`` each, so that a parallel map can spread
    one big parameter over several cores."""
    return [slice(lo, lo + max_elements) for lo in range(0, max(size, 1), max_elements)]
