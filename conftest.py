"""Suite-wide pytest set-up (the fixtures live in tests/conftest.py)."""

import pytest


def pytest_collection_modifyitems(config, items):
    """Notebooks checked by nbval belong to the full suite only: mark their cells ``slow``."""
    for item in items:
        if ".ipynb" in item.nodeid:
            item.add_marker(pytest.mark.slow)
