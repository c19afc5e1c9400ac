"""Scaling out: launching groups of worker processes and the data-parallel recipes."""
