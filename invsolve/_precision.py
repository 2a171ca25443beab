"""Where bfloat16 autocast pays: devices with native bfloat16 kernels.

``torch.autocast(..., dtype=torch.bfloat16)`` halves the U-Net's time on CPUs
with AVX-512 (oneDNN's bfloat16 convolutions) and on CUDA devices that support
bfloat16, but on an AVX2-only CPU PyTorch runs bfloat16 convolutions on its
reference path (``_slow_conv2d_forward``): the 1.1 M-parameter prior's forward
pass at 64², batch 16, took 25.9 s there against 0.6 s in float32 (AMD EPYC,
AVX2, PyTorch 2.13; docs/design.md, pitfalls).  The priors and the trainer ask
:func:`native_bfloat16` before they autocast.
"""

from __future__ import annotations

import torch

__all__ = ["native_bfloat16"]

# torch.backends.cpu.get_cpu_capability() values whose oneDNN has bfloat16 convolutions
_BFLOAT16_CPU_CAPABILITIES = ("AVX512", "AMX")


def native_bfloat16(device: torch.device | str) -> bool:
    """Whether bfloat16 autocast runs on fast kernels on ``device``.

    Parameters
    ----------
    device : torch.device or str
        ``"cpu"``: true when PyTorch dispatches AVX-512 (or AMX) kernels;
        ``"cuda"``: :func:`torch.cuda.is_bf16_supported`; other device types: false.

    Returns
    -------
    bool
    """
    device = torch.device(device)
    if device.type == "cpu":
        return torch.backends.cpu.get_cpu_capability().startswith(_BFLOAT16_CPU_CAPABILITIES)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return False
