"""The record of every decision and change: who, what, when, under which bundle, and the answer."""

from .records import SYSTEM, Actor, record

__all__ = ["SYSTEM", "Actor", "record"]
