"""Fixtures of the chaos suite: where each scenario's figures are collected."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chaos_figures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON file every chaos scenario of this session adds its figures to."""
    return tmp_path_factory.getbasetemp() / "chaos-figures.json"
