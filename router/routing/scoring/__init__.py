"""Scorers: each rates every candidate in [0, 1]; a strategy is a set of weights over them."""
