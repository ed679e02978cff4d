import pytest


@pytest.fixture(autouse=True)
def _one_thread_in_every_sweep_test(one_torch_thread):
    """Sweep tests run many small cells in this process: one torch thread each, as the local backend's
    workers do (the fixture is in tests/conftest.py)."""
