"""Quantities written for people (parameter counts, a setting's value): one form for the
rules' explanations and for everything the harness and the command line print."""

from __future__ import annotations

from typing import Any


def fmt_params(n: int) -> str:
    for unit, size in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            v = n / size
            return f"{v:.0f}{unit}" if v >= 100 else f"{v:.3g}{unit}"
    return str(n)


def format_value(field: str, value: Any, layers: int = 0) -> str:
    if value is None:
        return "none"
    if field == "frozen_layers" and isinstance(value, int) and layers:
        return f"first {value} of {layers} layers" if value else "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
