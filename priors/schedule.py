"""Noise schedules: how a diffusion process corrupts an image over time.

Every schedule maps a time ``t ∈ [0, 1]`` (0: clean, 1: pure noise) to
``(α_t, σ_t)`` with ``x_t = α_t·x₀ + σ_t·ε``, ``ε ~ N(0, I)``:

* :class:`DiscreteVPSchedule` — variance preserving (``α² + σ² = 1``) with
  ``N`` training steps; :meth:`~DiscreteVPSchedule.linear` is DDPM/ADM's
  linear β from 1e-4 to 0.02 over 1000 steps (Ho et al. 2020), the schedule
  RED-Diff's and DPS's models were trained with, and
  :meth:`~DiscreteVPSchedule.cosine` is Nichol & Dhariwal (2021).
  Step ``i`` sits at ``t = i / (N − 1)``; between steps ``log ᾱ`` is
  interpolated linearly.
* :class:`VESchedule` — variance exploding, ``α = 1``, ``σ`` geometric from
  ``σ_min`` to ``σ_max`` (Song et al. 2021, NCSN++).
* :class:`EDMSchedule` — ``α = 1`` with Karras et al. (2022)'s σ spacing, so
  that uniform ``t`` reproduces their sampling grid.

A network sees the time as :meth:`NoiseSchedule.network_time`, ``t·(N − 1)``
(the DDPM step index for discrete schedules, ``N = 1000`` otherwise).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from invsolve._checks import check_positive

__all__ = [
    "NoiseSchedule",
    "DiscreteVPSchedule",
    "VESchedule",
    "EDMSchedule",
    "schedule_from_config",
    "check_start_time",
]


class NoiseSchedule:
    """Base class: ``t ∈ [0, 1] → (α_t, σ_t)``."""

    name: str = ""
    variance_preserving: bool = False
    #: number of discrete steps the network's time input is scaled to
    num_steps: int = 1000

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(α_t, σ_t)`` for a tensor of times in ``[0, 1]`` (same shape as ``t``)."""
        raise NotImplementedError

    def network_time(self, t: torch.Tensor) -> torch.Tensor:
        """The time value fed to a denoiser network: ``t·(num_steps − 1)``."""
        return t * (self.num_steps - 1)

    def sampling_times(self, steps: int, start: float = 1.0) -> torch.Tensor:
        """``steps`` times from ``start`` (most noise) down to 0 (least), float64, descending.

        ``start < 1`` begins part-way, e.g. at the time where a warm start
        hands over (:func:`check_start_time` validates it).
        """
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        start = check_start_time(start)
        if steps == 1:
            return torch.full((1,), start, dtype=torch.float64)
        return torch.linspace(start, 0.0, steps, dtype=torch.float64)

    def reverse_steps(self, steps: int, start: float = 1.0) -> list[tuple[float, float | None]]:
        """Pairs ``(t, s)`` of consecutive :meth:`sampling_times`; the last ``s`` is
        ``None``, the clean end of the process."""
        times = self.sampling_times(steps, start).tolist()
        return list(zip(times, [*times[1:], None]))

    def noise_ratio(self, t: torch.Tensor | float) -> torch.Tensor:
        """``σ_t/α_t``: the noise level of ``x_t/α_t = x₀ + (σ_t/α_t)·ε`` (float64)."""
        alpha, sigma = self.alpha_sigma(torch.as_tensor(t, dtype=torch.float64))
        return sigma / alpha

    def noise_ratio_range(self) -> tuple[float, float]:
        """``(σ_0/α_0, σ_1/α_1)``: the lowest and highest noise level the schedule covers."""
        low, high = self.noise_ratio(torch.tensor([0.0, 1.0], dtype=torch.float64)).tolist()
        return low, high

    def time_at_noise_ratio(self, ratio: float | torch.Tensor) -> float | torch.Tensor:
        """The time ``t`` at which ``σ_t/α_t = ratio`` (the inverse of :meth:`noise_ratio`).

        ``σ_t/α_t`` increases with ``t`` for every schedule here, so the
        inverse is found by bisection to float64 precision (all entries of a
        tensor at once).  Used by samplers that move between a
        variance-exploding view (noise level ``ratio`` in the prior's network
        units) and the prior's own time.

        Parameters
        ----------
        ratio : float or torch.Tensor
            Noise level(s) ``> 0``.

        Returns
        -------
        float or torch.Tensor
            A float for a float, a float64 tensor of ``ratio``'s shape for a tensor.

        Raises
        ------
        ValueError
            If a ratio lies outside ``[σ_0/α_0, σ_1/α_1]``, the noise levels
            this schedule covers.
        """
        values = torch.as_tensor(ratio, dtype=torch.float64)
        low, high = self.noise_ratio_range()
        outside = ~((values >= low * (1 - 1e-9)) & (values <= high * (1 + 1e-9)))
        if bool(outside.any()):
            bad = float(values[outside].reshape(-1)[0])
            raise ValueError(
                f"noise level {bad:g} (network units) is outside the {low:.4g}..{high:.4g} that the "
                f"{self.name} schedule covers"
            )
        lower, upper = torch.zeros_like(values), torch.ones_like(values)
        for _ in range(60):
            middle = (lower + upper) / 2
            below = self.noise_ratio(middle) < values
            lower = torch.where(below, middle, lower)
            upper = torch.where(below, upper, middle)
        times = (lower + upper) / 2
        return times if isinstance(ratio, torch.Tensor) else float(times)

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable description; :func:`schedule_from_config` inverts it."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.to_config().items() if k != "name")
        return f"{type(self).__name__}({self.name}: {args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoiseSchedule) and self.to_config() == other.to_config()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_config().items())))


def check_start_time(start: float) -> float:
    """Return ``start`` as a float if it is a time in ``(0, 1]``, else raise ``ValueError``."""
    try:
        value = float(start)
    except (TypeError, ValueError):
        raise TypeError(f"start_time must be a number in (0, 1], got {start!r}") from None
    if not 0.0 < value <= 1.0:
        raise ValueError(f"start_time must lie in (0, 1] (1: pure noise, 0: the clean image), got {start!r}")
    return value


def _check_time(t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        t = torch.as_tensor(t, dtype=torch.float64)
    if not t.is_floating_point():
        t = t.to(torch.float64)
    return t


class DiscreteVPSchedule(NoiseSchedule):
    """Variance-preserving schedule defined by ``N`` discrete β's.

    ``ᾱ_i = Π_{j ≤ i}(1 − β_j)``, ``α = √ᾱ``, ``σ = √(1 − ᾱ)``.  Use the
    constructors :meth:`linear` and :meth:`cosine`.
    """

    variance_preserving = True

    def __init__(self, betas: torch.Tensor, name: str, params: dict[str, Any]) -> None:
        betas = torch.as_tensor(betas, dtype=torch.float64)
        if betas.dim() != 1 or len(betas) < 2 or not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError("betas must be a 1-D tensor of at least 2 values in (0, 1)")
        self.name = name
        self._params = params
        self.num_steps = len(betas)
        self.betas = betas
        self.log_alpha_bar = torch.cumsum(torch.log1p(-betas), dim=0)

    @classmethod
    def linear(cls, beta_start: float = 1e-4, beta_end: float = 0.02, num_steps: int = 1000) -> DiscreteVPSchedule:
        """DDPM's linear schedule (Ho et al. 2020): β from ``beta_start`` to ``beta_end``."""
        check_positive(beta_start, "beta_start")
        check_positive(beta_end, "beta_end")
        betas = torch.linspace(beta_start, beta_end, int(num_steps), dtype=torch.float64)
        return cls(betas, "vp-linear", {"beta_start": beta_start, "beta_end": beta_end, "num_steps": int(num_steps)})

    @classmethod
    def cosine(cls, num_steps: int = 1000, offset: float = 0.008, max_beta: float = 0.999) -> DiscreteVPSchedule:
        """Nichol & Dhariwal (2021): ``ᾱ(s) ∝ cos²((s + o)/(1 + o)·π/2)``, β clipped at ``max_beta``."""
        n = int(num_steps)
        s = torch.arange(n + 1, dtype=torch.float64) / n
        f = torch.cos((s + offset) / (1 + offset) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
        return cls(betas, "vp-cosine", {"num_steps": n, "offset": offset, "max_beta": max_beta})

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = _check_time(t)
        table = self.log_alpha_bar.to(device=t.device)
        position = (t.to(torch.float64) * (self.num_steps - 1)).clamp(0, self.num_steps - 1)
        lower = position.floor().long().clamp(max=self.num_steps - 2)
        weight = position - lower
        log_alpha_bar = torch.lerp(table[lower], table[lower + 1], weight)
        alpha = torch.exp(0.5 * log_alpha_bar)
        sigma = torch.sqrt(-torch.expm1(log_alpha_bar))
        return alpha.to(t.dtype), sigma.to(t.dtype)

    def sampling_times(self, steps: int, start: float = 1.0) -> torch.Tensor:
        """``steps`` training step indices spread evenly from ``start·(N − 1)`` to 0, as times.

        The first time is ``start`` itself, so that a warm start at
        ``start`` and the first step agree; the others are rounded to
        training steps.
        """
        steps = int(steps)
        start = check_start_time(start)
        first = start * (self.num_steps - 1)
        if steps < 1 or steps > self.max_sampling_steps(start):
            raise ValueError(
                f"steps must be in [1, {self.max_sampling_steps(start)}] for this schedule from start_time "
                f"{start:g}, got {steps}"
            )
        indices = torch.linspace(first, 0, steps, dtype=torch.float64).round()
        indices[0] = first
        return indices / (self.num_steps - 1)

    def max_sampling_steps(self, start: float = 1.0) -> int:
        """One step per training step at most: ``⌊start·(N − 1)⌋ + 1``."""
        return math.floor(check_start_time(start) * (self.num_steps - 1)) + 1

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, **self._params}


class VESchedule(NoiseSchedule):
    """Variance-exploding schedule: ``α = 1``, ``σ(t) = σ_min·(σ_max/σ_min)^t``."""

    name = "ve-geometric"

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0) -> None:
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min, got {sigma_max} <= {sigma_min}")

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = _check_time(t)
        sigma = self.sigma_min * (self.sigma_max / self.sigma_min) ** t
        return torch.ones_like(sigma), sigma

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


class EDMSchedule(NoiseSchedule):
    """Karras et al. (2022): ``α = 1``, ``σ(t) = (σ_max^{1/ρ} + (1 − t)(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ``."""

    name = "edm"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> None:
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        self.rho = check_positive(rho, "rho")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min, got {sigma_max} <= {sigma_min}")

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = _check_time(t)
        low, high = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        sigma = (high + (1 - t) * (low - high)) ** self.rho
        return torch.ones_like(sigma), sigma

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "rho": self.rho}


_CONSTRUCTORS = {
    "vp-linear": DiscreteVPSchedule.linear,
    "vp-cosine": DiscreteVPSchedule.cosine,
    "ve-geometric": VESchedule,
    "edm": EDMSchedule,
}


def schedule_from_config(config: dict[str, Any]) -> NoiseSchedule:
    """Rebuild a schedule from :meth:`NoiseSchedule.to_config` output."""
    if not isinstance(config, dict) or "name" not in config:
        raise ValueError(f"a schedule config must be a dict with a 'name', got {config!r}")
    params = dict(config)
    name = params.pop("name")
    if name not in _CONSTRUCTORS:
        raise ValueError(f"unknown noise schedule {name!r}; known: {', '.join(sorted(_CONSTRUCTORS))}")
    try:
        return _CONSTRUCTORS[name](**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for noise schedule {name!r}: {error}") from None
