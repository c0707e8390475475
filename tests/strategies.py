"""Hypothesis strategies, in one place: small shapes (1 included) and a seed.

Values are drawn from ``numpy.random.default_rng(seed)``, not by Hypothesis,
so a failing example is replayed exactly from its printed seed.
"""
from hypothesis import strategies as st

seeds = st.integers(0, 2**32 - 1)


@st.composite
def lstm_dims(draw):
    """N batch, T time, D input, H hidden."""
    return dict(N=draw(st.integers(1, 3)), T=draw(st.integers(1, 4)),
                D=draw(st.integers(1, 4)), H=draw(st.integers(1, 3)))


@st.composite
def model_dims(draw):
    """B batch, T time, V vocabulary, H hidden, L layers."""
    return dict(B=draw(st.integers(1, 3)), T=draw(st.integers(1, 4)),
                V=draw(st.integers(2, 5)), H=draw(st.integers(1, 3)),
                L=draw(st.integers(1, 3)))


# N batch, T time, D input, H hidden: the same draws serve every recurrent cell.
layer_dims = lstm_dims


# A drop probability for the regularisers' masks: neither almost-never nor almost-always.
drop_probs = st.floats(0.05, 0.9)


@st.composite
def embedding_dims(draw):
    """T time, N batch, V vocabulary, D embedding width."""
    return dict(T=draw(st.integers(1, 3)), N=draw(st.integers(1, 4)),
                V=draw(st.integers(1, 5)), D=draw(st.integers(1, 4)))
