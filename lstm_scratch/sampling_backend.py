"""Which backend ``sample --backend auto`` runs on, and one line that says so.

With a working GPU, the model goes there when the device sampler can run it
(engine/device_sampling.py: every char drawn on the GPU, many chars per host call),
which is faster than the CPU for any model worth a GPU. Where it cannot run, the
GPU would step the model and draw on the host, one round trip per char, which can
be slower than the CPU or faster (N rows at once): so both are measured on this
request, a short run of each, and the faster one samples. Without CuPy installed
there is nothing to choose, and nothing is said.
"""
import importlib.util
import sys
import time

from .backend import cupy_available
from .engine import device_sampling
from .sampling import generate

PROBE_CHARS = 32          # chars per measured run (after one warm-up run)


def sampling_model(saved, backend, source, num_samples=1):
    """(model, vocab, line) from the checkpoint ``saved`` on ``backend``: for "auto",
    the backend chosen as above, and the line that says which and why (None where
    nothing was chosen). The caller prints it once sampling has started, so that a
    bad prime is still a one-line error."""
    from .api import model_from_saved
    if backend != "auto":
        return (*model_from_saved(saved, backend, source=source), None)
    ok, why = cupy_available()
    if not ok:
        line = f"sample: on the CPU (numpy): {why}" if cupy_installed() else None
        return (*model_from_saved(saved, "numpy", source=source), line)
    gpu, vocab = model_from_saved(saved, "cupy", source=source)
    reason = device_sampling.applies(gpu)
    if reason is None:
        return gpu, vocab, "sample: on the GPU (cupy), every char drawn on the device"
    cpu, _ = model_from_saved(saved, "numpy", source=source)
    rates = {name: chars_per_second(model, vocab, num_samples)
             for name, model in (("cupy", gpu), ("numpy", cpu))}
    pick = max(rates, key=rates.get)
    other = "numpy" if pick == "cupy" else "cupy"
    line = (f"sample: on {pick}, measured faster for this request than {other} "
            f"({rates[pick]:,.0f} against {rates[other]:,.0f} chars/s; the GPU cannot draw on "
            f"the device here: {reason})")
    return (gpu if pick == "cupy" else cpu), vocab, line


def cupy_installed():
    """Whether CuPy is importable here (it may still find no GPU)."""
    return "cupy" in sys.modules or importlib.util.find_spec("cupy") is not None


def chars_per_second(model, vocab, num_samples):
    """Chars per second (all rows) of ``generate`` on this model, after a warm-up run."""
    rows = max(1, num_samples or 1)
    generate(model, vocab, "", 4, seed=0, num_samples=rows)
    start = time.perf_counter()
    generate(model, vocab, "", PROBE_CHARS, seed=0, num_samples=rows)
    return rows * PROBE_CHARS / max(time.perf_counter() - start, 1e-9)
