"""The media engine's one exception, in a module of its own so that sources, players and
recorders can raise it without importing the engine."""

from __future__ import annotations


class MediaError(Exception):
    """The engine cannot do what was asked (no free RTP port, an unreadable prompt file...)."""
