"""The order of the four gate blocks inside the fused gate matrices.

Written once, here. PyTorch and Keras both use i, f, g, o; other code bases
use i, f, o, g or a, i, f, o, so never assume: slice with :func:`split_gates`.

A fused pre-activation ``a`` of shape (..., 4H) holds the blocks side by side::

    a[..., 0H:1H] -> i  input gate       sigmoid
    a[..., 1H:2H] -> f  forget gate      sigmoid
    a[..., 2H:3H] -> g  cell candidate   tanh
    a[..., 3H:4H] -> o  output gate      sigmoid
"""
from ..backend import array_module

GATE_ORDER = ("i", "f", "g", "o")


def gate_slice(name, H):
    """The column slice of gate ``name`` in a fused (..., 4H) block."""
    k = GATE_ORDER.index(name)
    return slice(k * H, (k + 1) * H)


# Block positions of i, f, g, o: split_gates runs every time step, so no lookups there.
_I, _F, _G, _O = (GATE_ORDER.index(name) for name in "ifgo")


def split_gates(a):
    """Views ``(i, f, g, o)`` of a fused (..., 4H) block, each (..., H)."""
    H = a.shape[-1] // 4
    return (a[..., _I * H:(_I + 1) * H], a[..., _F * H:(_F + 1) * H],
            a[..., _G * H:(_G + 1) * H], a[..., _O * H:(_O + 1) * H])


def join_gates(i, f, g, o):
    """The inverse of :func:`split_gates`: four (..., H) blocks -> one fused (..., 4H)."""
    blocks = dict(i=i, f=f, g=g, o=o)
    xp = array_module(i)
    return xp.concatenate([blocks[name] for name in GATE_ORDER], axis=-1)
