"""Checks on text a client sends, shared by every input model (the API's and the services')."""

from __future__ import annotations

import re

__all__ = ["INVISIBLE", "plain_name", "plain_text"]


def plain_text(value: str) -> str:
    """``value`` if it holds no control character and no lone surrogate, else ``ValueError``."""
    for ch in value:
        code = ord(ch)
        if code < 0x20 or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"control character U+{code:04X} is not allowed")
    return value


#: Characters a name may not hold though they are not control characters: bidirectional
#: controls (embeddings, overrides, isolates, marks: an override makes ``gpj.exe`` read as
#: ``exe.jpg``) and zero-width or invisible ones (spaces, joiners, the word joiner, the
#: byte-order mark, invisible operators, the soft hyphen, the Mongolian vowel separator), with
#: which two names that look the same differ. The joiners are refused too, though some scripts
#: and emoji sequences use them: a name is read by people deciding about its owner, and one
#: that renders like another is worse than one spelt without a joiner.
INVISIBLE = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def plain_name(value: str) -> str:
    """``value`` if it is :func:`plain_text` and holds no :data:`INVISIBLE` character.

    The one check every name goes through: accounts, tokens (and so operators and partners'
    people), meetings' topics and participants.
    """
    plain_text(value)
    found = INVISIBLE.search(value)
    if found is not None:
        code = ord(found.group())
        raise ValueError(
            f"invisible or bidirectional control character U+{code:04X} is not allowed"
        )
    return value
