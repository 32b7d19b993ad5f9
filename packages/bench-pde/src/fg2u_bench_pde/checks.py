"""Argument checks of this package: each raises a ``TypeError``/``ValueError`` that names the argument, what it
got and what it must be.

Written here rather than imported from the core's private ``fg2u._checks`` (a benchmark imports only public
names); they follow the same wording.

Examples:
    >>> check_positive_int("num_points", 64)
    64
    >>> check_positive_float("eps", 0.0)
    Traceback (most recent call last):
    ...
    ValueError: eps must be a finite number > 0, got 0.0
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["check_positive_int", "check_positive_float", "check_choice"]


def check_positive_int(name: str, value: Any) -> int:
    """``value`` as an ``int`` if it is an integer >= 1 (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= 1, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def check_positive_float(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}: {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value
