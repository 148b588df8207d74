"""Argument types shared by the CLI's subcommands: each rejects a bad value with a one-line reason."""

from __future__ import annotations

import argparse
import datetime

__all__ = ["iso_date", "non_negative_float", "positive"]


def positive(value: str) -> int:
    """An integer of at least 1."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def non_negative_float(value: str) -> float:
    """A number of at least 0."""
    x = float(value)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return x


def iso_date(value: str) -> str:
    """A calendar date written YYYY-MM-DD, returned in that form."""
    try:
        return datetime.date.fromisoformat(value).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2025-01-31, got {value!r}") from None
