"""Shared guard of the core's tests: no test may leave JAX's float64 switch or torch's default dtype changed.

``jax.config.update("jax_enable_x64", True)`` in one test changes the dtypes every later test sees (in this
process); tests that need float64 use ``with jax.enable_x64(True):`` instead. This fixture turns a leak into a
failure of the test that leaked, with the fix in the message.
"""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _no_leaked_float64():
    yield
    jax = sys.modules.get("jax")
    if jax is not None and jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", False)
        pytest.fail("this test left jax_enable_x64 on for every later test; use `with jax.enable_x64(True):`")
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_default_dtype() != torch.float32:
        torch.set_default_dtype(torch.float32)
        pytest.fail("this test changed torch's default dtype for every later test; restore it in a fixture")
