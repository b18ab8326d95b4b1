"""Shared test set-up: one Hypothesis profile for the whole suite."""

from __future__ import annotations

from hypothesis import settings

# Deterministic and without timing: examples are the same on every run, no example database is
# written, and a slow machine (CI shares one) never turns into a "deadline exceeded" failure.
settings.register_profile("meridian", deadline=None, database=None, derandomize=True)
settings.load_profile("meridian")
