"""The engine: everything that makes the textbook layers of :mod:`lstm_scratch.nn` fast.

Fused CUDA and Numba kernels, one cuBLAS call a step on the GPU, reusable workspaces, the
batch split across threads, the inference stepper and the compiled optimizer
update. Every piece here is tested equal to the textbook.
"""
