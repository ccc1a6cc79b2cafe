"""Tuning: the quasi-random search, the tune job, its launcher, and the study config check."""
