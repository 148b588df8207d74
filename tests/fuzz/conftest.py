"""Fuzz tests report a failure with its input: a megabyte input must not turn the report into a warning."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Let Hypothesis print the failing example however large it is.

    Warnings are errors in this project, and Hypothesis warns that the repr of a big example is
    expensive exactly when it reports a failure, which would hide the failure behind the warning.
    """
    for item in items:
        if item.path.parent.name == "fuzz":
            item.add_marker(pytest.mark.filterwarnings("ignore:Generating overly large repr"))
