"""Fixtures for integration tests; the helpers live in harness.py."""

from __future__ import annotations

import pytest
from harness import fresh_account


@pytest.fixture
def aws(monkeypatch):
    with fresh_account(monkeypatch) as account:
        yield account
