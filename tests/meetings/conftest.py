"""The end-to-end meeting tests use ``grant_key``, ``nodes`` and ``plane`` from tests/conftest.py."""
