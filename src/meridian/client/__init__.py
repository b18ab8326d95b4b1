"""Participants: join a meeting through the control plane, then send and receive sealed frames."""

from __future__ import annotations

from .keys import Received
from .participant import Participant
from .signalling import Admission, signal_url

__all__ = ["Admission", "Participant", "Received", "signal_url"]
