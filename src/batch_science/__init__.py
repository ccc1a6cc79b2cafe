"""Measure the effects of data parallelism on training (Shallue et al. 2019); see docs/architecture.md."""
