import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

# CI runs with derandomize so a green run is reproducible; locally Hypothesis explores new examples each time.
settings.register_profile("ci", deadline=None, derandomize=True, max_examples=40,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REQUIRE_TOOLS = os.environ.get("TINYGRAD_DL_REQUIRE_TOOLS") == "1"


def need_tool(ok: bool, what: str):
    """Skip when a tool is missing, except in CI (TINYGRAD_DL_REQUIRE_TOOLS=1), where a missing tool fails."""
    if ok:
        return
    if REQUIRE_TOOLS:
        pytest.fail(f"{what} is required here (TINYGRAD_DL_REQUIRE_TOOLS=1) but missing")
    pytest.skip(f"{what} is not installed")


def need_module(name: str):
    try:
        return __import__(name)
    except ImportError:
        need_tool(False, f"Python package {name!r}")


def need_binary(name: str):
    need_tool(shutil.which(name) is not None, f"program {name!r}")
