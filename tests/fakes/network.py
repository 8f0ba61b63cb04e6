"""A fixture that refuses every network connection: domain-service tests on the fakes use it,
so a service that reached for AWS (or anything else) fails instead of passing through moto."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a domain-service unit test tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
