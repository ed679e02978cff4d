import os

import pytest
from hypothesis import settings

# CI: the same examples every run (a flaky property test is a defect, not noise).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test, restored afterwards. Tests that run many small networks use it: on a busy
    2-core machine two threads spin against each other (measured 14x the CPU time of one for a 128 x 20 tanh
    run), and a sweep's local workers run with one thread each too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
