import os

from hypothesis import settings

# CI: the same examples every run (a flaky property test is a defect, not noise).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
