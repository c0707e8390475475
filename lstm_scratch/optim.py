"""RMSprop, Adam and AdamW, with optional clipping of the global gradient norm.

For every parameter p with gradient g, at step t = 1, 2, ... (each as PyTorch's
``torch.optim`` class of the same name; λ is ``weight_decay``):

RMSprop (also Keras's), whose weight decay is coupled, an L2 term in g::

    g ← g + λ p
    v ← ρ v + (1 - ρ) g²
    p ← p - lr g / (√v + ε)

Adam, its weight decay coupled too::

    g ← g + λ p
    m ← β1 m + (1 - β1) g
    v ← β2 v + (1 - β2) g²
    p ← p - lr / (1 - β1^t) · m / (√v / √(1 - β2^t) + ε)

AdamW, its weight decay decoupled: p shrinks apart from g, and m, v, p follow
as in Adam with g unchanged::

    p ← p (1 - lr λ)

With ``clip_norm`` > 0, every g is first scaled by min(1, clip_norm / ‖g‖),
where ‖g‖ is the norm of all gradients together. "No clipping" has one
spelling everywhere: 0 (``--clip-norm 0``, ``ls.train(clip_norm=0)``, the
saved config and optimizer state). None is read as 0 here, and so is the
-1.0 that older checkpoints saved.
"""
import numpy as np

from .backend import array_module, to_host
from .errors import UserError
from .engine import device_optim
from .engine.fused_cpu import adam_kernel, rmsprop_kernel


class _Optimizer:
    """What the optimizers share: the global norm, the refusal of a non-finite
    gradient, clipping, and the update spread over chunks of flat views.

    A subclass names its state and writes the update of one chunk, twice: once
    compiled (:meth:`_kernel` and its :meth:`_kernel_scalars`) and once in
    NumPy-style ``xp`` calls (:meth:`_numpy_update`), which also serve CuPy.

    KIND : the name in OPTIMIZERS
    SLOTS : names of the per-parameter state, each a dict name -> array like the parameter
    SCALARS : names of the numbers in :meth:`state_dict`
    OPTIONAL : the scalars that older states lack -> the value they meant then
    DECOUPLED : weight decay shrinks p (AdamW) rather than adding λ p to g
    DEVICE_KERNEL : the kernel of engine/device_optim.cu doing the update on CuPy
    """
    KIND, SLOTS, SCALARS, OPTIONAL, DECOUPLED = None, (), (), {}, False

    def __init__(self, params, lr, eps, weight_decay, clip_norm, map_fn):
        clip_norm = 0.0 if clip_norm is None else clip_norm
        self.lr = _checked("lr", lr, lr > 0, "> 0")
        self.eps = _checked("eps", eps, eps > 0, "> 0")
        self.weight_decay = _checked("weight_decay", weight_decay, weight_decay >= 0, ">= 0")
        self.clip_norm = _checked("clip_norm", clip_norm, clip_norm >= 0,
                                  ">= 0 (0 = no clipping)")
        self.params = params
        self.map_fn = map_fn
        for slot in self.SLOTS:
            setattr(self, slot, {name: array_module(p).zeros_like(p) for name, p in params.items()})
        self._scratch = {}          # per parameter, made when the NumPy update first needs it
        self._tables = None         # on CuPy: the address tables of the one-launch update
        self.steps = 0

    def step(self, grads):
        """Apply one update. ``grads`` is not modified. Returns the global
        gradient norm before clipping, as a float.

        Raises FloatingPointError, with every parameter and all state untouched,
        when a gradient is not finite.
        """
        xp = array_module(next(iter(self.params.values())))
        flat_g = [g.ravel(order="K") for g in grads.values()]  # views, whatever the layout
        if xp is np:
            norm = float(np.sqrt(sum(float(xp.vdot(g, g)) for g in flat_g)))
        else:                                   # summed on the device: one wait, not K
            norm = float(xp.sqrt(sum(xp.vdot(g, g).astype(np.float64) for g in flat_g)))
        if not np.isfinite(norm):
            raise FloatingPointError(f"gradient norm is {norm}")
        scale = 1.0
        if self.clip_norm and norm > self.clip_norm:
            scale = self.clip_norm / norm
        if xp is not np and self._device_step(xp, grads, scale):     # one launch for all
            self.steps += 1
            return norm
        work = []
        for name, p in self.params.items():
            whole = (p, *(getattr(self, slot)[name] for slot in self.SLOTS), grads[name])
            flat = _flat_views(*whole)
            work += [(name, flat, chunk) for chunk in _chunks(p.size)] if flat else \
                [(name, whole, None)]
        list((self.map_fn or map)(lambda item: self._update(*item, scale), work))
        self.steps += 1
        return norm

    def _device_step(self, xp, grads, scale):
        """The update of every parameter in one launch (engine/device_optim.cu) where all
        the arrays allow it; returns whether it ran."""
        params = list(self.params.values())
        slots = [[getattr(self, slot)[name] for name in self.params] for slot in self.SLOTS]
        grads = [grads[name] for name in self.params]
        if not device_optim.applies(xp, params + grads + [a for s in slots for a in s]):
            return False
        if self._tables is None:
            self._tables = device_optim.AddressTables(xp)
        device_optim.update(xp, self._tables, self.DEVICE_KERNEL, params, slots, grads,
                            self._device_scalars(scale))
        return True

    def _update(self, name, arrays, chunk, scale):
        """The update of one chunk of parameter ``name``: ``arrays`` holds 1-D views
        of p, its state (SLOTS) and g in memory order, ``chunk`` a slice of them.
        With chunk None (layouts that differ), the whole arrays at once."""
        p, *state, g = arrays if chunk is None else (a[chunk] for a in arrays)
        xp = array_module(p)
        kernel = self._kernel(p.dtype) if xp is np and chunk is not None else None
        if kernel is not None:                  # the same, compiled (engine/fused_cpu.py)
            f = p.dtype.type
            kernel(p, *state, g, *(f(x) for x in self._kernel_scalars(scale)))
            return
        if chunk is None:
            tmp = xp.empty_like(p)
        else:
            if name not in self._scratch:       # (a race between workers only makes two)
                self._scratch[name] = xp.empty(arrays[0].size, p.dtype)
            tmp = self._scratch[name][chunk]
        if scale != 1.0:
            g = g * p.dtype.type(scale)                         # g ← g min(1, clip / ‖g‖)
        if self.weight_decay and not self.DECOUPLED:
            g = g + p.dtype.type(self.weight_decay) * p         # g ← g + λ p
        self._numpy_update(xp, p, *state, g, tmp)

    def _kernel(self, dtype):
        """The compiled chunk update for arrays of ``dtype``, or None."""
        raise NotImplementedError

    def _kernel_scalars(self, scale):
        """The numbers the compiled update takes after its arrays."""
        raise NotImplementedError

    def _device_scalars(self, scale):
        """The numbers device_optim.cu's update takes after its tables."""
        return self._kernel_scalars(scale)

    def _numpy_update(self, xp, p, *state_g_tmp):
        """The update of p and its state in place, from the clipped (and, unless
        DECOUPLED, decayed) g; ``tmp`` is scratch space like p."""
        raise NotImplementedError

    def state_dict(self):
        """Everything needed to resume exactly, as host NumPy arrays and numbers:
        "<slot>.<param name>" for each of SLOTS, and SCALARS."""
        state = {f"{slot}.{name}": to_host(a)
                 for slot in self.SLOTS for name, a in getattr(self, slot).items()}
        state.update({key: getattr(self, key) for key in self.SCALARS})
        state["clip_norm"] = float(self.clip_norm or 0.0)
        return state

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (arrays move to the params' backend).
        Everything is checked before anything is written."""
        arrays = {f"{slot}.{name}": a
                  for slot in self.SLOTS for name, a in getattr(self, slot).items()}
        missing = [key for key in (*arrays, *self.SCALARS)
                   if key not in state and key not in self.OPTIONAL]
        if missing:
            raise UserError(f"optimizer state has no {', '.join(missing)} "
                            f"(expected {self.KIND}'s state)")
        for key, a in arrays.items():
            if np.shape(state[key]) != a.shape:
                raise UserError(f"optimizer state {key} has shape {np.shape(state[key])}, "
                                f"expected {a.shape}")
        scalars = {key: _scalar(key, state.get(key, self.OPTIONAL.get(key)))
                   for key in self.SCALARS}
        for key, a in arrays.items():
            a[...] = array_module(a).asarray(np.asarray(state[key]), dtype=a.dtype)
        for key, value in scalars.items():
            setattr(self, key, value)
        self.clip_norm = max(0.0, self.clip_norm)               # older files: -1.0 = off


class RMSprop(_Optimizer):
    """Updates a dict of live parameter arrays in place.

    params : dict name -> array (the model's ``params``)
    lr : learning rate; rho : decay of the running mean of g²; eps : added to √v
    clip_norm : the largest global gradient norm let through; 0 = no clipping
    map_fn : optional parallel ``map(fn, items)`` (e.g. ThreadedDataParallel.map)
        to update slices of the parameters on several cores
    weight_decay : λ of g ← g + λ p (after clipping); with λ > 0 the update takes
        the NumPy path, so that the compiled one of the default stays as it was
    Defaults are Keras's (lr 1e-3, rho 0.9, eps 1e-7); with ``alpha=rho`` they
    match ``torch.optim.RMSprop`` exactly.
    """
    KIND, SLOTS, DEVICE_KERNEL = "rmsprop", ("v",), "rmsprop_update"
    SCALARS = ("lr", "rho", "eps", "steps", "clip_norm", "weight_decay")
    OPTIONAL = {"weight_decay": 0.0}                # states saved before it: no decay

    def __init__(self, params, lr=1e-3, rho=0.9, eps=1e-7, clip_norm=0.0, map_fn=None, *,
                 weight_decay=0.0):
        self.rho = _checked("rho", rho, 0.0 <= rho < 1.0, "in [0, 1)")
        super().__init__(params, lr, eps, weight_decay, clip_norm, map_fn)

    def _kernel(self, dtype):
        return None if self.weight_decay else rmsprop_kernel(dtype)

    def _kernel_scalars(self, scale):
        return scale, self.lr, self.rho, 1.0 - self.rho, self.eps

    def _device_scalars(self, scale):
        return scale, self.weight_decay, self.lr, self.rho, 1.0 - self.rho, self.eps

    def _numpy_update(self, xp, p, v, g, tmp):
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


class Adam(_Optimizer):
    """Updates a dict of live parameter arrays in place, as ``torch.optim.Adam``.

    params, clip_norm, map_fn : as :class:`RMSprop`'s
    lr : learning rate; betas : (β1, β2), the decays of the running means of g and g²
    eps : added to √v / √(1 - β2^t)
    weight_decay : λ of g ← g + λ p (after clipping, as torch's step after clip_grad_norm_)
    """
    KIND, SLOTS, DEVICE_KERNEL = "adam", ("m", "v"), "adam_update"
    SCALARS = ("lr", "beta1", "beta2", "eps", "weight_decay", "steps", "clip_norm")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 clip_norm=0.0, map_fn=None):
        beta1, beta2 = betas
        self.beta1 = _checked("betas[0]", beta1, 0.0 <= beta1 < 1.0, "in [0, 1)")
        self.beta2 = _checked("betas[1]", beta2, 0.0 <= beta2 < 1.0, "in [0, 1)")
        super().__init__(params, lr, eps, weight_decay, clip_norm, map_fn)

    def _corrections(self):
        """lr / (1 - β1^t) and √(1 - β2^t), for this step t, as torch computes them."""
        t = self.steps + 1
        return self.lr / (1.0 - self.beta1 ** t), (1.0 - self.beta2 ** t) ** 0.5

    def _kernel(self, dtype):
        return adam_kernel(dtype)

    def _kernel_scalars(self, scale):
        decay, l2 = (1.0 - self.lr * self.weight_decay, 0.0) if self.DECOUPLED else \
            (1.0, self.weight_decay)
        b1, b2 = self.beta1, self.beta2
        return (scale, decay, l2, b1, 1.0 - b1, b2, 1.0 - b2, self.eps, *self._corrections())

    def _numpy_update(self, xp, p, m, v, g, tmp):
        # In place, into buffers made once: these arrays are as big as the model.
        step_size, root_bc2 = self._corrections()
        if self.DECOUPLED and self.weight_decay:
            p *= 1.0 - self.lr * self.weight_decay           # p ← p (1 - lr λ)
        m *= self.beta1
        xp.multiply(g, 1.0 - self.beta1, out=tmp)
        m += tmp                                            # m ← β1 m + (1-β1) g
        v *= self.beta2
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - self.beta2
        v += tmp                                            # v ← β2 v + (1-β2) g²
        xp.sqrt(v, out=tmp)
        tmp /= root_bc2
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp                            # p ← p - lr/(1-β1^t) · m / (√v/√(1-β2^t) + ε)


class AdamW(Adam):
    """:class:`Adam` with decoupled weight decay, as ``torch.optim.AdamW``:
    p ← p (1 - lr λ) before the step, and g is left as it is."""
    KIND, DECOUPLED = "adamw", True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 clip_norm=0.0, map_fn=None):
        super().__init__(params, lr, betas, eps, weight_decay, clip_norm, map_fn)


OPTIMIZERS = {"rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


# What a saved scalar may be: the constructors' checks, for numbers read from a file
# (a step count of -1 or a beta of 1 would divide by zero in Adam's bias correction).
_SAVED = {"lr": (lambda v: v > 0, "> 0"), "eps": (lambda v: v > 0, "> 0"),
          "weight_decay": (lambda v: v >= 0, ">= 0"),
          "clip_norm": (lambda v: v >= 0 or v == -1.0, ">= 0 (or -1, older files' off)"),
          "rho": (lambda v: 0 <= v < 1, "in [0, 1)"), "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
          "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
          "steps": (lambda v: v == int(v) and 0 <= v < 2**53, "a count >= 0")}


def _scalar(key, value):
    """A saved scalar, checked: a finite number that ``_SAVED`` accepts (int for steps)."""
    ok, expected = _SAVED[key]
    try:
        number = float(value)
        good = np.isfinite(number) and ok(number)
    except (TypeError, ValueError):
        good = False
    if not good:
        raise UserError(f"optimizer state {key} is {value!r}, expected {expected}")
    return int(number) if key == "steps" else number


def _checked(name, value, ok, expected):
    """``value`` as a float if ``ok``, else a one-line UserError naming what was expected."""
    if not ok:
        raise UserError(f"{name} must be {expected}, got {value!r}")
    return float(value)


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
