"""`make bench`: measured ratios of the engine against the plain Keras loop and the matmul peak."""
