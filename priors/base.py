"""Diffusion priors: a noise schedule plus one denoising network output.

A :class:`DiffusionPrior` works in its own *network* range (e.g. ``[-1, 1]``)
and converts to and from the user's physical units (HU, attenuation, counts)
with its :class:`Normalization`.  Everything a sampler needs — the clean-image
estimate ``x̂₀``, the noise estimate ``ε̂`` and the score — is derived from one
network output in :meth:`DiffusionPrior.predict`, the one place where the
prediction types (ε, x₀, v) are converted.

A *conditional* prior (``conditional`` is true, e.g. a class-conditional
:class:`~invsolve.priors.UNetPrior`) takes an optional ``condition`` in
:meth:`~DiffusionPrior.predict`, :meth:`~DiffusionPrior.denoise`,
:meth:`~DiffusionPrior.eps`, :meth:`~DiffusionPrior.score` and
:meth:`~DiffusionPrior.sample`; without one it acts as the unconditional model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from invsolve._checks import check_finite_number, check_int, check_positive
from invsolve._random import make_generator, randn_like

from .gaussian_fit import LowRankGaussian
from .schedule import NoiseSchedule

__all__ = ["Normalization", "DiffusionPrior", "PREDICTION_TYPES", "GAUSSIAN_FIT_MODULE"]

#: what the network output means: the noise ε, the clean image x₀, or the
#: velocity v = α·ε − σ·x₀ (Salimans & Ho 2022; variance-preserving schedules only)
PREDICTION_TYPES = ("eps", "x0", "v")
#: name of the submodule that holds a prior's :class:`LowRankGaussian` fit (its
#: state-dict keys start with ``"gaussian_fit_module."``)
GAUSSIAN_FIT_MODULE = "gaussian_fit_module"


@dataclass(frozen=True)
class Normalization:
    """Affine map between physical units and the prior's network range.

    ``physical = scale · network + offset``.

    Parameters
    ----------
    scale : float
        Physical units per network unit (``> 0``).
    offset : float
        Physical value at network value 0.
    unit : str
        Name of the physical unit, for display ("HU", "1/cm", "a.u.").
    """

    scale: float = 1.0
    offset: float = 0.0
    unit: str = ""

    def __post_init__(self) -> None:
        check_positive(self.scale, "scale")
        check_finite_number(self.offset, "offset")
        if not isinstance(self.unit, str):
            raise TypeError(f"unit must be a str, got {type(self.unit).__name__}")

    @classmethod
    def from_range(cls, low: float, high: float, unit: str = "") -> Normalization:
        """Map the physical interval ``[low, high]`` onto the network range ``[-1, 1]``."""
        low, high = check_finite_number(low, "low"), check_finite_number(high, "high")
        if not high > low:
            raise ValueError(f"need high > low, got low={low!r}, high={high!r}")
        return cls(scale=(high - low) / 2, offset=(high + low) / 2, unit=unit)

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units → network range."""
        return (x - self.offset) / self.scale

    def to_physical(self, x: torch.Tensor) -> torch.Tensor:
        """Network range → physical units."""
        return x * self.scale + self.offset

    def in_units(self, factor: float, unit: str) -> Normalization:
        """The same map for physical values expressed in other units.

        ``factor`` is the size of one old unit in the new ones: a prior
        trained on attenuation in a.u. whose 1 a.u. is 0.0384 /mm becomes a
        prior on attenuation in /mm with ``in_units(0.0384, "1/mm")``.
        """
        check_positive(factor, "factor")
        return Normalization(scale=self.scale * factor, offset=self.offset * factor, unit=unit)

    def to_config(self) -> dict[str, Any]:
        return asdict(self)


def _per_sample(value: torch.Tensor, ndim: int) -> torch.Tensor:
    """Reshape a ``(B,)`` tensor to broadcast over ``(B, ...)`` with ``ndim`` dims."""
    return value.reshape(-1, *([1] * (ndim - 1)))


class DiffusionPrior(nn.Module):
    """Base class of diffusion priors.

    Subclasses implement :meth:`network_output`, the single call to the
    denoiser.  All other quantities derive from it here.

    Parameters
    ----------
    schedule : NoiseSchedule
        Maps time to ``(α_t, σ_t)``.
    image_shape : sequence of int
        Shape of one image, ``(C, *spatial)``.
    prediction : {"eps", "x0", "v"}
        What :meth:`network_output` returns.
    normalization : Normalization, optional
        Physical units ↔ network range; identity by default.
    """

    def __init__(
        self,
        schedule: NoiseSchedule,
        image_shape: Sequence[int],
        prediction: str = "eps",
        normalization: Normalization | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
        if prediction not in PREDICTION_TYPES:
            raise ValueError(f"prediction must be one of {PREDICTION_TYPES}, got {prediction!r}")
        if prediction == "v" and not schedule.variance_preserving:
            raise ValueError(f"v-prediction needs a variance-preserving schedule, got {schedule.name!r}")
        self.schedule = schedule
        self.image_shape = tuple(int(n) for n in image_shape)
        self.prediction = prediction
        self.normalization = normalization if normalization is not None else Normalization()

    @property
    def gaussian_fit(self) -> LowRankGaussian | None:
        """The Gaussian fit of the training images in network units, or ``None`` if none was set.

        A :class:`LowRankGaussian` ``N(μ, U diag(λ) Uᵀ + s² I)`` that a
        sampler can use for an analytic warm start: the high-noise part of
        a diffusion model is close to the Gaussian of its data (Wang &
        Vastola 2023, arXiv:2303.02490).  :func:`~invsolve.priors.train`
        computes it; :meth:`set_gaussian_fit` attaches one.
        """
        return self._modules.get(GAUSSIAN_FIT_MODULE)

    def set_gaussian_fit(self, fit: LowRankGaussian | None) -> None:
        """Attach ``fit`` as :attr:`gaussian_fit` (``None`` removes it).

        It becomes the submodule ``gaussian_fit_module``, so ``.to(device)``
        moves it and ``state_dict()`` (hence a saved checkpoint) holds its
        buffers.  ``fit`` itself is moved to the prior's device.

        Raises
        ------
        TypeError
            If ``fit`` is neither a :class:`LowRankGaussian` nor ``None``.
        ValueError
            If ``fit.image_shape`` differs from the prior's ``image_shape``.
        """
        if fit is None:
            self._modules.pop(GAUSSIAN_FIT_MODULE, None)
            return
        if not isinstance(fit, LowRankGaussian):
            raise TypeError(f"fit must be a LowRankGaussian or None, got {type(fit).__name__}")
        if fit.image_shape != self.image_shape:
            raise ValueError(
                f"the Gaussian fit is for images of shape {fit.image_shape}, but the prior's image_shape is "
                f"{self.image_shape}"
            )
        device = self.device
        self.add_module(GAUSSIAN_FIT_MODULE, fit.to(device))

    def _first_tensor(self) -> torch.Tensor | None:
        for tensor in self.parameters():
            return tensor
        for tensor in self.buffers():
            return tensor
        return None

    @property
    def device(self) -> torch.device:
        """Device of the prior's tensors (CPU if it holds none)."""
        tensor = self._first_tensor()
        return tensor.device if tensor is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the prior's tensors (float32 if it holds none)."""
        tensor = self._first_tensor()
        return tensor.dtype if tensor is not None and tensor.is_floating_point() else torch.float32

    @property
    def conditional(self) -> bool:
        """Whether :meth:`network_output` accepts a ``condition`` (false here)."""
        return False

    def network_output(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser's raw output for ``x_t`` (network range) at times ``t`` (shape ``(B,)``).

        A conditional prior's override also takes a keyword ``condition``;
        :meth:`predict` passes it only when one is given.
        """
        raise NotImplementedError

    def _times(self, x_t: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x_t.real.dtype, device=x_t.device)
        if t.dim() == 0:
            t = t.expand(x_t.shape[0])
        if t.shape != (x_t.shape[0],):
            raise ValueError(f"t must be a scalar or shaped (B,) = ({x_t.shape[0]},), got {tuple(t.shape)}")
        return t

    def predict(
        self, x_t: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean image and noise estimates ``(x̂₀, ε̂)`` from one network call.

        Parameters
        ----------
        x_t : torch.Tensor
            Noisy images ``(B, *image_shape)`` in network range.
        t : float or torch.Tensor
            Time in ``[0, 1]``, a scalar or one per batch item.
        condition : torch.Tensor, optional
            What a conditional prior is conditioned on (see the subclass);
            ``None`` asks for the unconditional estimate.
        """
        t = self._times(x_t, t)
        alpha, sigma = (_per_sample(v, x_t.dim()) for v in self.schedule.alpha_sigma(t))
        if condition is None:
            output = self.network_output(x_t, t)
        elif not self.conditional:
            raise ValueError(
                f"condition must be None for the unconditional {type(self).__name__}, got a {type(condition).__name__}"
            )
        else:
            output = self.network_output(x_t, t, condition=condition)
        if self.prediction == "eps":
            return (x_t - sigma * output) / alpha, output
        if self.prediction == "x0":
            return output, (x_t - alpha * output) / sigma
        return alpha * x_t - sigma * output, sigma * x_t + alpha * output

    def denoise(
        self, x_t: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Posterior-mean estimate ``x̂₀ = E[x₀ | x_t]`` (network range)."""
        return self.predict(x_t, t, condition)[0]

    def eps(self, x_t: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Noise estimate ``ε̂ = E[ε | x_t]``."""
        return self.predict(x_t, t, condition)[1]

    def score(self, x_t: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Score ``∇ log p_t(x_t) = −ε̂ / σ_t`` of the noisy marginal."""
        t = self._times(x_t, t)
        sigma = _per_sample(self.schedule.alpha_sigma(t)[1], x_t.dim())
        return -self.eps(x_t, t, condition) / sigma

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Physical units → network range (see :class:`Normalization`)."""
        return self.normalization.to_network(x)

    def to_physical(self, x: torch.Tensor) -> torch.Tensor:
        """Network range → physical units (see :class:`Normalization`)."""
        return self.normalization.to_physical(x)

    def ancestral_step(
        self,
        x_t: torch.Tensor,
        x0_hat: torch.Tensor,
        t: float,
        s: float | None,
        generator: torch.Generator | None,
        variance: str = "posterior",
    ) -> torch.Tensor:
        """Draw ``x_s`` given ``x_t`` and the estimate ``x̂₀`` for ``s < t`` (DDPM's reverse step).

        With ``α_{t|s} = α_t/α_s`` and ``σ²_{t|s} = σ_t² − α²_{t|s}σ_s²`` the
        Gaussian has mean ``(α_{t|s}σ_s²·x_t + α_s σ²_{t|s}·x̂₀)/σ_t²`` (Ho et
        al. 2020, eq. 7, for any pair of times and any schedule) and variance

        * ``"posterior"``: ``σ²_{t|s}σ_s²/σ_t²``, the variance of
          ``q(x_s | x_t, x₀)`` (DDPM's β̃, exact when ``x₀`` is certain given
          ``x_t``);
        * ``"forward"``: ``σ²_{t|s}/α²_{t|s}`` (DDPM's β), the exact reverse
          variance when ``x₀`` given ``x_t`` is as uncertain as the noise, as
          for a prior that is wide on the scale of ``σ_t/α_t`` (Ho et al.
          2020, Sec. 3.2, the two extremes).

        ``s=None`` is the clean end (``α=1, σ=0``) and returns ``x̂₀``.
        """
        if variance not in ("posterior", "forward"):
            raise ValueError(f"variance must be 'posterior' or 'forward', got {variance!r}")
        if s is None:
            return x0_hat
        times = torch.tensor([t, s], dtype=torch.float64)
        (alpha_t, alpha_s), (sigma_t, sigma_s) = (v.tolist() for v in self.schedule.alpha_sigma(times))
        alpha_ts = alpha_t / alpha_s
        var_ts = max(sigma_t**2 - alpha_ts**2 * sigma_s**2, 0.0)
        mean = (alpha_ts * sigma_s**2 * x_t + alpha_s * var_ts * x0_hat) / sigma_t**2
        std = math.sqrt(var_ts * sigma_s**2) / sigma_t if variance == "posterior" else math.sqrt(var_ts) / alpha_ts
        return mean + std * randn_like(x_t, generator)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        steps: int = 1000,
        seed: int | torch.Generator | None = None,
        progress: bool = True,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Samples by ancestral sampling, ``(n, *image_shape)`` in physical units.

        ``condition`` (conditional priors only) is passed to every
        :meth:`denoise` call; ``None`` samples the unconditional model.
        """
        n, steps = check_int(n, "n"), check_int(steps, "steps")
        generator = make_generator(seed, self.device)
        x = self.initial_noise(n, generator)
        for t, s in tqdm(self.schedule.reverse_steps(steps), desc="sampling", disable=not progress):
            x = self.ancestral_step(x, self.denoise(x, t, condition), t, s, generator)
        return self.to_physical(x)

    def initial_noise(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """Start of reverse sampling: ``σ_1·ε``, ``(n, *image_shape)`` in network range."""
        sigma_max = float(self.schedule.alpha_sigma(torch.tensor(1.0, dtype=torch.float64))[1])
        x = torch.empty((n, *self.image_shape), dtype=self.dtype, device=self.device)
        return sigma_max * randn_like(x, generator)
