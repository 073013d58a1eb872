"""Shared scaffolding of the rule tests (tests/rules/test_rules_*.py): one case per rule, the scenario
fields under which it fires, the fact it concludes, and close fields under which it stays silent.
Importable from any test: tests/conftest.py puts this folder on the path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class RuleCase:
    rule: str
    fires: dict  # scenario fields under which the rule fires
    cls: Optional[type]  # the fact class it concludes
    expect: dict  # fields of that fact
    silent: dict  # close scenario fields under which it stays silent
    note: str = ""
