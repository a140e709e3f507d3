"""Per-sample numba kernels: one module per neuron model or filter. numpy + numba only."""
