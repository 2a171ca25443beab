"""Resumable sampling: the samples a long :func:`invsolve.reconstruct` has finished, kept on disk.

After every sampler run, :class:`SampleCheckpoint` writes the samples drawn so far,
the random generator's state and the last run's info to one file, atomically
(:func:`invsolve.files.atomic_write`).  A later call with the same inputs and
settings reads it back and draws only the samples still missing, from the same
generator state, so an interrupted run resumed gives exactly the samples of an
uninterrupted one.  The file records a fingerprint of everything the samples depend
on (measurement, operator, prior weights, sampler settings, seed): a checkpoint of a
different run is refused, never mixed in.  Loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from invsolve.files import atomic_write

__all__ = ["SampleCheckpoint", "run_fingerprint"]

_FORMAT = "invsolve-samples-1"


def _digest(tensors: list[torch.Tensor]) -> str:
    """SHA-256 of the tensors' shapes, dtypes and values."""
    hasher = hashlib.sha256()
    for tensor in tensors:
        data = tensor.detach().cpu().contiguous()
        hasher.update(f"{tuple(data.shape)}{data.dtype}".encode())
        if data.is_complex():
            data = torch.view_as_real(data)
        hasher.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def run_fingerprint(
    y: torch.Tensor,
    operator: torch.nn.Module,
    prior: torch.nn.Module,
    condition: torch.Tensor | None,
    settings: dict[str, Any],
    start_image: torch.Tensor | None = None,
) -> dict[str, str]:
    """What the samples of a :func:`invsolve.reconstruct` call depend on, as short strings.

    ``settings``: the sampler's name and hyperparameters, steps, number of
    samples, samples per run, seed, noise level and start time.
    """
    return {
        "measurement": _digest([y]),
        "operator": f"{type(operator).__name__}:" + _digest(list(operator.state_dict().values())),
        "prior": f"{type(prior).__name__}:" + _digest(list(prior.state_dict().values())),
        "condition": "none" if condition is None else _digest([condition]),
        "start_image": "none" if start_image is None else _digest([start_image]),
        "settings": json.dumps(settings, sort_keys=True, default=repr),
    }


class SampleCheckpoint:
    """The file where a resumable :func:`invsolve.reconstruct` keeps its finished samples.

    Parameters
    ----------
    path : path
        The checkpoint file.
    fingerprint : dict of str to str
        :func:`run_fingerprint` of the call.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: dict[str, str]) -> None:
        self.path = Path(path)
        self.fingerprint = dict(fingerprint)

    def load(self) -> tuple[list[torch.Tensor], torch.Tensor | None, dict[str, Any]] | None:
        """The finished sample batches, the generator state after them and the last run's info.

        ``None`` if the file does not exist.  Raises ``ValueError`` naming the
        file if it is not a sample checkpoint or belongs to another run.
        """
        if not self.path.exists():
            return None
        try:
            stored = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(
                f"checkpoint {self.path} is not a readable sample checkpoint ({error}); delete it to start over"
            ) from None
        if not isinstance(stored, dict) or stored.get("format") != _FORMAT:
            raise ValueError(f"{self.path} is not an invsolve sample checkpoint; delete it or choose another path")
        differing = [key for key, value in self.fingerprint.items() if stored["fingerprint"].get(key) != value]
        if differing:
            raise ValueError(
                f"checkpoint {self.path} belongs to another run (its {', '.join(differing)} differ from this "
                "call's); delete it to start over, or resume with the inputs and settings it was written with"
            )
        return list(stored["draws"]), stored["generator_state"], json.loads(stored["run_info"])

    def save(self, draws: list[torch.Tensor], generator: torch.Generator | None, run_info: dict[str, Any]) -> None:
        """Write the finished sample batches (each ``(B, count, *in_shape)``) and the generator's state."""
        content = {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "draws": [draw.detach().cpu() for draw in draws],
            "generator_state": None if generator is None else generator.get_state(),
            "run_info": json.dumps(run_info, default=repr),
        }
        atomic_write(self.path, lambda temporary: torch.save(content, temporary))
