"""Checks on text a client sends, shared by every input model (the API's and the services')."""

from __future__ import annotations

__all__ = ["plain_text"]


def plain_text(value: str) -> str:
    """``value`` if it holds no control character and no lone surrogate, else ``ValueError``."""
    for ch in value:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"control character U+{code:04X} is not allowed")
    return value
