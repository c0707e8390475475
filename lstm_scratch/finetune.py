"""Fine-tuning: a new run that starts from a checkpoint's weights (``init_from``).

It is not a resume: the optimizer is fresh, the step is 0 and the schedule is
this run's. The weights (the checkpoint's average of them, if it kept one)
and the architecture (config.FIXED_ON_FINETUNE) come from the checkpoint.

The vocabulary grows by the new text's characters. A Vocab stays sorted by
code point (``encode`` searches it, and a checkpoint must list increasing code
points), so an old character's id can move; its weights move with it. The
parameters indexed by the vocabulary (model.py)::

    E   (V, D)    rows       the embedding, when embedding_size > 0
    Wx0 (V, GH)   rows       layer 0 fed one-hot characters (no embedding)
    Wy  (H, V)    columns    the head (none when tied: the head is Eᵀ, E's rows)
    by  (V,)      entries

hold the checkpoint's values at their characters' new ids, and a fresh
model's (this run's seed, the model's initialiser) at the new characters',
except for the new characters' output bias, which is set as follows.

Step 0 predicts what the checkpoint predicted, on any text of old characters.
Such text never reads a new character's input row; the new characters enter
only through their logits z_n = h·w_n + b_n (w_n: their head columns), which
scale every old character's probability by 1 / (1 + Σ_n exp(z_n − lse)),
lse = log Σ_old exp(z_c). Every cell's h lies in (−1, 1)^H, so z_n ≤ b_n + ‖w_n‖₁,
and for any distribution q over the old characters Gibbs' inequality gives
lse ≥ q·z + H(q) ≥ q·b + H(q) − ‖W q‖₁ =: F, whatever the hidden state.
With b_n = F − ‖w_n‖₁ − log(K/ε) (K new characters, ε = np.finfo(dtype).eps),
Σ_n exp(z_n − lse) ≤ K exp(−log(K/ε)) = ε: the loss is the checkpoint's up to
float rounding, at every position of every text.

Why it still learns: b_n is finite and only some tens of nats below the old
logits (log(K/ε) ≈ 16 + log K in float32, 36 + log K in float64, plus the
slack of the bound), not -1e4, nor -inf. p_n rounds to about 0, but where a new
character is the target the gradient on its logit is p_n − 1 ≈ −1, which is
not small: b_n and w_n climb by about the optimizer's step each update
(Adam's and RMSprop's steps do not shrink with the gradient), and the loss
on those targets falls from the first step. How fast p_n rises depends on the
step and on H (each of w_n's H entries moves): a 16-unit test model halves its
held-out loss in 40 Adam steps at lr 0.05, but needs hundreds at lr 1e-3.
"""
import numpy as np

from .backend import to_host
from .config import FIXED_ON_FINETUNE
from .errors import UserError
from .regularisers import REGULARISERS


def vocab_axes(config):
    """{parameter name: its vocabulary axis} for a model config (CharRNN.config)."""
    axes = {"E": 0} if config.get("embedding_size") else {"Wx0": 0}
    if not config.get("tie_weights"):
        axes["Wy"] = 1
    axes["by"] = 0
    return axes


def logsumexp_floor(W, b):
    """A lower bound of logsumexp(h W + b) over every h in [-1, 1]^H.

    W : (H, V) float64, b : (V,) float64. Returns max over q of q·b + H(q) − ‖W q‖₁
    (see the module docstring) for q in softmax(b), the uniform distribution and
    each one-hot: lse(b) − ‖W softmax(b)‖₁, mean(b) + log V − ‖W's mean column‖₁,
    and max_c b_c − ‖W[:, c]‖₁.
    """
    top = b.max()
    q = np.exp(b - top)                                     # softmax(b), stably
    lse = top + np.log(q.sum())
    q /= q.sum()
    return max(lse - np.abs(W @ q).sum(),
               b.mean() + np.log(len(b)) - np.abs(W.mean(axis=1)).sum(),
               (b - np.abs(W).sum(axis=0)).max())


def grow_params(weights, fresh, old_ids, config):
    """The starting parameters over the grown vocabulary.

    weights : {name: host array} the checkpoint's, over the old vocabulary (V₀)
    fresh : {name: host array} a fresh model's over the grown one (V), model dtype
    old_ids : (V₀,) int, the grown vocabulary's id of each old character
    config : the model config (CharRNN.config)
    Returns {name: host array} shaped like ``fresh``, in its dtype.
    """
    axes = vocab_axes(config)
    grown = {}
    for name, value in fresh.items():
        if name not in axes:
            grown[name] = weights[name]
            continue
        value = value.copy()
        where = [slice(None)] * value.ndim
        where[axes[name]] = old_ids
        value[tuple(where)] = weights[name]                 # each old character's own weights
        grown[name] = value
    V = len(grown["by"])
    new_ids = np.setdiff1d(np.arange(V), old_ids)
    if new_ids.size:
        head = grown["E"].T if config.get("tie_weights") else grown["Wy"]      # (H, V)
        W, b = head.astype(np.float64), grown["by"].astype(np.float64)
        floor = logsumexp_floor(W[:, old_ids], b[old_ids])
        margin = np.log(new_ids.size / np.finfo(grown["by"].dtype).eps)    # K exp(-margin) = ε
        grown["by"][new_ids] = floor - np.abs(W[:, new_ids]).sum(axis=0) - margin
    return grown


def start_from(model, saved, old_vocab, vocab, source):
    """Load the checkpoint ``saved`` (load_checkpoint's dict) into the fresh ``model``,
    whose vocabulary ``vocab`` is the checkpoint's ``old_vocab`` grown (see above).
    Returns the new characters (a str)."""
    expected = {**REGULARISERS, "cell": "lstm", **saved["meta"]["model"]}
    for name in FIXED_ON_FINETUNE:
        if model.config[name] != expected[name]:
            raise UserError(f"{source}: its model has {name} {expected[name]!r}, the run's "
                            f"{model.config[name]!r}: fine-tuning keeps the checkpoint's model")
    weights = saved["params"] if saved.get("ema") is None else saved["ema"]
    fresh = {name: to_host(p) for name, p in model.params.items()}
    model.load_params(grow_params(weights, fresh, vocab.ids_of(old_vocab), model.config),
                      source=source)
    return "".join(sorted(set(vocab.chars) - set(old_vocab.chars)))
