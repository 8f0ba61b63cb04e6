"""In-memory fakes of the storage ports (tailor.storage.ports), for unit tests with no moto and no
network. tests/contract runs one suite against these and the moto-backed adapters, so a fake
cannot drift from what the real adapter does."""

from tests.fakes.storage import FakeInvoker, FakeObjectStore, FakeRecordStream, FakeStateTable

__all__ = ["FakeInvoker", "FakeObjectStore", "FakeRecordStream", "FakeStateTable"]
