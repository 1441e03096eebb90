"""Helpers for the policy tests: run one check over one fixture dir, by resource-name verdicts."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DATA = Path(__file__).resolve().parent / "data"
