"""Shared helpers for the widget tests: every widget is driven from Python, headless."""

from __future__ import annotations

import pytest


def assert_ok(widget) -> None:
    """The last refresh succeeded and left a PNG picture."""
    assert widget.last_error is None, repr(widget.last_error)
    assert widget.view.value[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def ok():
    return assert_ok
