"""Selling: plans and their entitlements, checkout, renewal, transitions, and partners."""

__all__: list[str] = []
