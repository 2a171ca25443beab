import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

# Deterministic, single-threaded-friendly defaults for the whole suite.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)


#: the property tests' Hypothesis settings (tests/*/test_properties.py): the same cases on
#: every run, so CI stays deterministic, and a bounded count, so it stays fast
settings.register_profile(
    "invsolve-properties",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=40,
    print_blob=False,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture),
)

ROOT = Path(__file__).resolve().parents[1]


def _load_readme_figures() -> None:
    """Make ``import readme_figures`` give benchmarks/readme_figures.py (tests/test_examples.py and
    tests/test_readme_numbers.py hold the README to it); one instance, as dataclasses look their
    module up in ``sys.modules``."""
    spec = importlib.util.spec_from_file_location("readme_figures", ROOT / "benchmarks" / "readme_figures.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_figures"] = module
    spec.loader.exec_module(module)


_load_readme_figures()
