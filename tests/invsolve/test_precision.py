"""Where bfloat16 autocast is used: devices with native bfloat16 kernels only."""

import pytest
import torch

from invsolve._precision import native_bfloat16


@pytest.mark.parametrize(
    "capability, native", [("AVX512", True), ("AMX", True), ("AVX2", False), ("DEFAULT", False), ("NO AVX", False)]
)
def test_cpus_with_avx512_have_native_bfloat16(monkeypatch, capability, native):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert native_bfloat16("cpu") is native
    assert native_bfloat16(torch.device("cpu")) is native


def test_other_devices():
    assert native_bfloat16("meta") is False
    assert native_bfloat16("cuda") is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
