//! Reference for the foundation ops: elementwise, reductions, matmul, transpose.
