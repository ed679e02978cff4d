import pytest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Sweep tests run many small cells in this process: one torch thread each (on a busy 2-core machine two
    threads spin against each other: measured 14x the CPU time of one for a 128 x 20 tanh run), as the local
    backend's workers do. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
