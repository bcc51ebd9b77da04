"""The numba options every compiled kernel of the project uses."""

# fastmath lets LLVM vectorise the reductions and the Adam loop (8 floats per AVX2 op);
# error_model="numpy" drops the zero-division checks that would block vectorisation. The
# reordering changes the last bits only; tests/model/test_fast_engine.py holds it to 1e-5.
# cache=True keys each function's cache on its own source file only: an edit to a function it
# calls in another module (model.vecmath, model.kernels.gate_product) is not seen, and the old
# machine code is loaded. After editing those, delete the *.nbi/*.nbc files in __pycache__/.
JIT = dict(
    cache=True,
    nogil=True,
    # Every fast-math flag but "nnan" and "ninf": the NaN/Inf check must survive.
    fastmath={"nsz", "arcp", "contract", "afn", "reassoc"},
    error_model="numpy",
)
