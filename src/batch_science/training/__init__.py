"""Training: the compiled multi-trial engine and every other trainer of the trial contract."""
