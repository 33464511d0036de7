"""Carrier tests: the shared assertion helpers report failures as test code does."""

import pytest

pytest.register_assert_rewrite("carriers.parse_helpers")
