"""Data parallelism across processes and machines: MPI (mpi4py), NCCL on CuPy.

    mpiexec -n 2 lstm-scratch train big/ --batch-size 64

Process r of N takes rows [lo_r, hi_r) of every global batch (as
ThreadedDataParallel splits a batch across threads, which still run inside
each process), with its rows of the carried state and of the dropout masks,
which every process draws for the whole batch from the same Generator. Its
gradient, scaled by its share of the targets n_r / n, goes into one flat
buffer with the scaled loss and a stop flag, and one all-reduce per step
sums it (Horovod's tensor fusion, ChainerMN's pure_nccl)::

    L = Σ_r (n_r / n) L_r        dθ = Σ_r (n_r / n) dθ_r

Every process then takes the same RMSprop step from the same gradient, so
the weights stay identical, and the run does not depend on N. On NumPy the
sum is MPI's Allreduce; on CuPy it is NCCL's, on the device, its unique id
sent over MPI (or MPI's through the host, where processes share a GPU).

Nothing here imports mpi4py unless a launcher announced more than one
process (its environment variables), so a plain run never loads MPI.
"""
import functools
import os
import sys
import time
import traceback

import numpy as np

from .backend import array_module, gpu_count, nccl_all_reducer, to_host
from .errors import UserError
from .engine import blas
from .engine.parallel import available_cores

# (size, rank) variables set by launchers: MPICH/Hydra and Intel MPI, Open MPI,
# MVAPICH, and Slurm's srun (only for a step it launched).
LAUNCHER_ENV = (("PMI_SIZE", "PMI_RANK"), ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
                ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"),
                ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"))

# Seconds between a failing process's last line on stderr and its MPI Abort:
# time for the launcher to forward the line before it tears everything down.
ABORT_GRACE_S = 0.5


def launched():
    """(size, rank) a launcher announced in the environment; (1, 0) when none did."""
    for size_var, rank_var in LAUNCHER_ENV:
        size, rank = os.environ.get(size_var, ""), os.environ.get(rank_var, "0")
        if size.isdigit() and rank.isdigit():
            return int(size), int(rank)
    return 1, 0


@functools.lru_cache(maxsize=1)
def current_world():
    """This process's World: MPI's COMM_WORLD when launched as several processes,
    else a world of one (and mpi4py is never imported)."""
    size, _ = launched()
    if size <= 1:
        return World()
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise error_everywhere(f"launched as {size} processes, but mpi4py is missing ({exc}); "
                          f"install it with: pip install 'lstm-scratch[mpi]'") from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() != size:
        raise error_everywhere(f"launched as {size} processes, but MPI sees {comm.Get_size()}: "
                          f"mpi4py's MPI is not the launcher's (with srun, pass --mpi=pmi2 or "
                          f"--mpi=pmix; with mpiexec, use the one installed with mpi4py)")
    return World(comm)


def error_everywhere(message):
    """A UserError every process meets alike: only rank 0 reports it."""
    error = UserError(message)
    error.everywhere = True
    return error


class World:
    """This process's place among ``size`` processes: rank, the processes sharing
    its machine, and the collectives training needs."""

    def __init__(self, comm=None):
        self.comm = comm
        self.rank, self.size = (comm.Get_rank(), comm.Get_size()) if comm else (0, 1)
        self.local_rank, self.local_size = 0, 1
        if comm is not None:
            from mpi4py import MPI
            local = comm.Split_type(MPI.COMM_TYPE_SHARED)
            self.local_rank, self.local_size = local.Get_rank(), local.Get_size()
            local.Free()
        self._device_all_reduce, self.device_path = None, None

    def cores(self):
        """The cores this process may use: its share of the machine's, so that N
        processes on one machine do not each start a thread per core."""
        return max(1, available_cores() // self.local_size)

    def rows(self, batch_size):
        """(lo, hi): this process's rows of a batch of ``batch_size`` rows."""
        bounds = np.linspace(0, batch_size, self.size + 1).astype(int)
        return int(bounds[self.rank]), int(bounds[self.rank + 1])

    def all_reduce(self, buf):
        """Sum ``buf`` (NumPy or CuPy, contiguous) over all processes, in place."""
        if self.size == 1:
            return buf
        if array_module(buf) is np:
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            return buf
        if self._device_all_reduce is None:
            self._device_all_reduce = self._choose_device_all_reduce()
        self._device_all_reduce(buf)
        return buf

    def _choose_device_all_reduce(self):
        """NCCL, on the devices, when every process has a GPU of its own; else (NCCL
        refuses two ranks on one GPU) through the host with MPI. Decided together,
        since all must take the same path."""
        from mpi4py import MPI
        own_gpu = self.comm.allreduce(int(gpu_count() >= self.local_size), op=MPI.MIN)
        if own_gpu:
            self.device_path = "nccl"
            return nccl_all_reducer(self.size, self.rank, self.comm.bcast)
        self.device_path = "mpi via host (processes share a GPU)"

        def through_host(buf):
            host = np.ascontiguousarray(to_host(buf))
            self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
            buf[...] = array_module(buf).asarray(host)
        return through_host

    def broadcast(self, arrays):
        """Overwrite every process's arrays (dict of same-shaped arrays) with rank 0's."""
        if self.size == 1:
            return
        for a in arrays.values():
            host = np.ascontiguousarray(to_host(a))
            self.comm.Bcast(host, root=0)
            a[...] = array_module(a).asarray(host)

    def rank0(self, value):
        """Rank 0's ``value`` (a picklable Python value), on every process: for a
        decision each process would make from its own clock (--max-minutes)."""
        return value if self.size == 1 else self.comm.bcast(value, root=0)

    def gather_rows(self, state):
        """The carried state of every process's rows, joined in row order on rank 0
        (host arrays; None elsewhere). ``state``: a tuple per layer, (h, c) for the LSTM,
        (h,) for the GRU and RNN, or None."""
        if self.size == 1 or state is None:
            return state
        host = [tuple(to_host(a) for a in layer) for layer in state]
        parts = self.comm.gather(host, root=0)
        if self.rank != 0:
            return None
        return [tuple(np.concatenate([p[l][k] for p in parts if p is not None])
                      for k in range(len(layer)))
                for l, layer in enumerate(host)]

    def agree(self, error):
        """Collective: every process passes the exception it met (or None). Returns
        None if none did, else the first one (by rank) on every process, marked
        ``everywhere`` so that only rank 0 reports it: rank 0's own, or a
        UserError naming the process that met it."""
        if self.size == 1:
            return error
        errors = self.comm.allgather(None if error is None else str(error)
                                     if isinstance(error, UserError)
                                     else f"{type(error).__name__}: {error}")
        failed = [r for r, e in enumerate(errors) if e is not None]
        if not failed:
            return None
        first = failed[0]
        agreed = error if first == self.rank else \
            UserError(errors[first] if first == 0 else f"process {first}: {errors[first]}")
        agreed.everywhere = True
        return agreed

    def share_cores(self):
        """Hold BLAS to this process's share of the cores, for the rest of the process."""
        if self.local_size > 1:
            self._blas_limit = blas.controller().limit(limits=self.cores(), user_api="blas")

    def stop_all(self, exc):
        """One process met an error the others did not (they wait in a collective):
        say it in one line (a traceback first, for a bug), then stop every process."""
        if isinstance(exc, KeyboardInterrupt):
            code, line = 130, "interrupted"
        elif isinstance(exc, OSError):                  # a file we could not write or read
            where = f"{exc.filename}: " if exc.filename else ""
            code, line = 2, f"error: {where}{exc.strerror or exc}"
        elif isinstance(exc, UserError):
            code, line = 2, f"error: {exc}"
        else:
            traceback.print_exc()
            code, line = 1, f"error: {type(exc).__name__}: {exc}"
        print(f"lstm-scratch: process {self.rank}: {line}", file=sys.stderr, flush=True)
        # The line sits in a pipe to the launcher, which forwards it; an Abort at once
        # let MPICH's launcher exit without it about once in 40 runs. Give it time.
        time.sleep(ABORT_GRACE_S)
        self.comm.Abort(code)
        os._exit(code)                  # MPICH's Abort may return before the launcher kills us


class DistributedDataParallel:
    """``loss_and_grads`` and ``loss`` of a ThreadedDataParallel, over this process's
    rows of each global batch, all-reduced across the world.

    ``stop`` is the step's agreed stop flag: True on every process as soon as one
    asked to stop (``local_stop()``, a Ctrl-C), so all stop after the same step.
    """

    def __init__(self, runner, world):
        self.runner, self.world = runner, world
        self.model, self.workers, self.map = runner.model, runner.workers, runner.map
        params = self.model.params
        xp = self.model.backend.xp
        sizes = [p.size for p in params.values()]
        self.flat = xp.zeros(sum(sizes) + 2, self.model.dtype)  # grads, loss, stop flag
        self.grads, offset = {}, 0
        for (name, p), n in zip(params.items(), sizes):
            # Each gradient is a row-major view of the buffer, as the parameters are,
            # so that the optimizer walks p, v and g in one order.
            self.grads[name] = self.flat[offset:offset + n].reshape(p.shape)
            offset += n
        self.stop, self.local_stop = False, lambda: False

    def loss_and_grads(self, inputs, targets, state=None):
        """As ThreadedDataParallel.loss_and_grads, on the global batch; ``state`` and
        the state returned are this process's rows. The gradients are a buffer
        overwritten by the next step."""
        B = inputs.shape[0]
        lo, hi = self.world.rows(B)
        loss, grads, state = self.runner.loss_and_grads(inputs[lo:hi], targets[lo:hi], state,
                                                        rows=(lo, hi, B))
        share = targets[lo:hi].size / targets.size
        xp = self.model.backend.xp
        for name, g in grads.items():
            xp.multiply(g, share, out=self.grads[name])
        self.flat[-2] = loss * share
        self.flat[-1] = 1.0 if self.local_stop() else 0.0
        loss, stop = (float(v) for v in to_host(self.world.all_reduce(self.flat)[-2:]))
        self.stop = stop > 0
        return loss, self.grads, state

    def close(self):
        """End the threads of this process's runner (the world stays up)."""
        self.runner.close()

    def loss(self, inputs, targets, state=None):
        """As ThreadedDataParallel.loss, the mean over the global batch."""
        lo, hi = self.world.rows(inputs.shape[0])
        local = np.zeros(2)                                  # (sum of losses, targets)
        if hi > lo:
            loss, state = self.runner.loss(inputs[lo:hi], targets[lo:hi], state)
            local[:] = loss * targets[lo:hi].size, targets[lo:hi].size
        total, count = self.world.all_reduce(local)
        return float(total / count), state
