"""Selling: plans and their entitlements, checkout, renewal, transitions, and partners."""
