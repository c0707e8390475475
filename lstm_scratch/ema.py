"""An exponential moving average of the weights (Polyak averaging, as AWD-LSTM's
NT-ASGD averages late in training), kept beside the live ones.

After every update t = 1, 2, ... of the parameters θ::

    d_t = min(decay, (1 + t) / (10 + t))
    θ̄ ← d_t θ̄ + (1 - d_t) θ          θ̄ starts as the initial θ

The ramp (1 + t) / (10 + t) is TensorFlow's ExponentialMovingAverage with
``num_updates``: early on θ̄ follows θ closely, so it is not an average of the
random initialisation; from t ≈ 9 / (1 - decay) on, d_t = decay.

θ̄ is what a run evaluates, samples from and keeps in ``best.npz``; training
goes on updating θ. A checkpoint holds both (and t), so a resumed run is exact,
and ``load`` of a checkpoint with an average gives a model with θ̄.
"""
from contextlib import contextmanager

import numpy as np

from .backend import array_module, to_host
from .errors import UserError


class EMA:
    """θ̄ for a dict of live parameter arrays.

    params : dict name -> array (the model's ``params``), copied as the start
    decay : in (0, 1): the weight of the past, per update, once the ramp is over
    map_fn : optional parallel ``map`` (ThreadedDataParallel.map) over the parameters
    """

    def __init__(self, params, decay, map_fn=None):
        if not 0.0 < decay < 1.0:
            raise UserError(f"ema decay must be in (0, 1), got {decay!r}")
        self.decay, self.map_fn, self.updates = float(decay), map_fn, 0
        self.average = {name: p.copy() for name, p in params.items()}
        self._scratch = {}

    def rate(self):
        """d_t for the next update."""
        t = self.updates + 1
        return min(self.decay, (1.0 + t) / (10.0 + t))

    def update(self, params):
        """θ̄ ← d θ̄ + (1 - d) θ, in place, written θ̄ += (1 - d)(θ - θ̄)."""
        weight = 1.0 - self.rate()

        def one(name):
            average, p = self.average[name], params[name]
            xp = array_module(p)
            tmp = self._scratch.get(name)
            if tmp is None:             # (each name goes to one worker: no race)
                tmp = self._scratch[name] = xp.empty_like(p)
            xp.subtract(p, average, out=tmp)                # θ - θ̄
            tmp *= p.dtype.type(weight)
            average += tmp                                  # θ̄ += (1 - d)(θ - θ̄)
        list((self.map_fn or map)(one, list(self.average)))
        self.updates += 1

    @contextmanager
    def applied(self, params):
        """Within the block, ``params`` hold θ̄ (in place: the model sees it); after
        it, θ again, bit for bit."""
        live = {name: p.copy() for name, p in params.items()}
        try:
            for name, p in params.items():
                p[...] = self.average[name]
            yield
        finally:
            for name, p in params.items():
                p[...] = live[name]

    def state_dict(self):
        """θ̄ as host arrays (the checkpoint's ema/ members); t goes in the meta."""
        return {name: to_host(a) for name, a in self.average.items()}

    def load_state_dict(self, arrays, updates):
        """Restore θ̄ (checked: every name, every shape) and t."""
        for name, a in self.average.items():
            if name not in arrays or np.shape(arrays[name]) != a.shape:
                raise UserError(f"weight average: {name} is missing or has another shape "
                                f"than the model's {a.shape}")
        for name, a in self.average.items():
            a[...] = array_module(a).asarray(np.asarray(arrays[name]), dtype=a.dtype)
        self.updates = int(updates)
