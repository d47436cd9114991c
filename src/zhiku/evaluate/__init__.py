"""Evaluation: question sets, metrics (pure functions on ids), runs."""
