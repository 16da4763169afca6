"""Errors a user can cause and fix. The CLI prints them as `error: <message>` and exits 1.

Messages are one line, name the file or value at fault, and say what is wrong with it. Anything
that is not a VqzipError is a bug in vqzip and is allowed to show a traceback.
"""
from __future__ import annotations


class VqzipError(Exception):
    """Base of every error that is the input's fault rather than vqzip's."""


class InputError(VqzipError):
    """A bad file or path from the user: missing, unreadable, unsupported, too large, or an
    output that already exists."""


class FormatError(VqzipError):
    """A .vqz file that is truncated, corrupted, not a vqzip file, or from a newer format."""


class ModelError(VqzipError):
    """A .vqz made by a model that is not installed, or whose weights differ from ours."""
