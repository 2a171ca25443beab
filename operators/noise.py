"""Measurement noise models.

* :class:`GaussianNoise` — additive white Gaussian noise.
* :class:`PoissonNoise` — photon-counting noise of transmission CT, returned
  as post-log line integrals.
"""

from __future__ import annotations

import torch

from invsolve._checks import check_finite, check_nonempty, check_nonnegative, check_positive, check_tensor
from invsolve._random import make_generator, randn_like

__all__ = ["GaussianNoise", "PoissonNoise"]


class GaussianNoise:
    """Additive white Gaussian noise ``y = Ax + σ·n``, ``n ~ N(0, I)``.

    For complex measurements the real and imaginary parts each get variance
    ``σ²`` (so ``E|n|² = 2σ²``).

    Parameters
    ----------
    std : float
        Standard deviation ``σ`` in the measurement's units (``>= 0``).
    """

    def __init__(self, std: float) -> None:
        self.std = check_nonnegative(std, "std")

    def __call__(self, clean: torch.Tensor, seed: int | torch.Generator | None = None) -> torch.Tensor:
        """Return ``clean`` plus noise drawn with ``seed`` (an int or a generator on ``clean``'s device).

        ``clean`` must be a finite, non-empty floating (or complex) tensor; a ``std`` so
        large that the noisy values overflow ``clean``'s dtype is refused
        (``ValueError``).
        """
        check_tensor(clean, "clean")
        check_nonempty(clean, "clean")
        check_finite(clean, "clean")
        if self.std == 0:
            return clean.clone()
        generator = make_generator(seed, clean.device)
        noisy = clean + self.std * randn_like(clean, generator)
        if not bool(torch.isfinite(noisy).all()):
            raise ValueError(f"std={self.std:g} is too large for {clean.dtype}: the noisy values overflow; use float64")
        return noisy

    def negative_log_likelihood(self, y: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """``‖y − predicted‖² / (2σ²)`` per batch item (up to a constant), shape ``(B,)``."""
        if self.std == 0:
            raise ValueError("the likelihood of noise with std 0 is degenerate; use std > 0")
        residual = (y - predicted).abs() ** 2
        return residual.reshape(residual.shape[0], -1).sum(dim=1) / (2 * self.std**2)

    def __repr__(self) -> str:
        return f"GaussianNoise(std={self.std})"


class PoissonNoise:
    """Photon-counting noise of transmission CT, returned after the log transform.

    For clean line integrals ``p`` (a sinogram of dimensionless optical
    depths), the detector counts photons with mean ``λ = I₀·exp(−p)``
    (Beer–Lambert) and records

        s = N + σ_e·n,   N ~ Poisson(λ),   n ~ N(0, 1),

    where ``σ_e`` is the standard deviation of the electronic (readout)
    noise in counts.  The measurement is the post-log line integral

        y = −log(max(s, s_min) / I₀).

    Photon starvation (``N = 0``, or ``s <= 0`` with electronic noise) would
    give an infinite ``y``; signals below ``s_min = min_counts`` are
    replaced by ``min_counts``, the usual pre-log correction of low-dose CT
    (with the default 0.5, a zero count becomes half a photon; use 1 for the
    other common choice).  For ``λ ≫ 1`` the measurement is nearly unbiased
    with variance ``≈ (λ + σ_e²)/λ²`` (:meth:`variance`), the weights of
    penalised weighted least squares (Sauer & Bouman, "A local update
    strategy for iterative reconstruction from projections", IEEE Trans.
    Signal Process. 41(2), 1993; Thibault et al., "A three-dimensional
    statistical approach to improved image quality for multislice helical
    CT", Med. Phys. 34(11), 2007).

    Parameters
    ----------
    incident_flux : float
        ``I₀``, expected photons per detector pixel and view without an
        object, ``> 0`` (e.g. 1e4 for low dose, 1e6 for normal dose).
    min_counts : float
        ``s_min``, the floor that replaces lower signals (zero counts), in
        ``(0, I₀]``; default 0.5.
    electronic_std : float
        ``σ_e``, standard deviation of the additive Gaussian readout noise in
        counts, ``>= 0``; default 0.

    Examples
    --------
    >>> noise = PoissonNoise(incident_flux=1e4)
    >>> sinogram = torch.full((1, 1, 30, 91), 0.4)   # clean line integrals A(x)
    >>> y = noise(sinogram, seed=0)                  # noisy line integrals
    >>> weights = 1 / noise.variance(y)              # WLS weights from the data
    """

    def __init__(self, incident_flux: float, min_counts: float = 0.5, electronic_std: float = 0.0) -> None:
        self.incident_flux = check_positive(incident_flux, "incident_flux")
        self.min_counts = check_positive(min_counts, "min_counts")
        if self.min_counts > self.incident_flux:
            raise ValueError(
                f"min_counts must not exceed incident_flux ({self.incident_flux:g}), got {min_counts!r}"
            )
        self.electronic_std = check_nonnegative(electronic_std, "electronic_std")

    def expected_counts(self, line_integrals: torch.Tensor) -> torch.Tensor:
        """Mean photon counts ``λ = I₀·exp(−p)`` for line integrals ``p``, same shape."""
        self._check(line_integrals, "line_integrals")
        return self.incident_flux * torch.exp(-line_integrals)

    def __call__(self, clean: torch.Tensor, seed: int | torch.Generator | None = None) -> torch.Tensor:
        """Noisy post-log line integrals ``y`` for clean ones ``p``.

        Parameters
        ----------
        clean : torch.Tensor
            Clean line integrals ``p`` (any shape, e.g. ``(B, C, n_angles,
            n_detector)``), real, finite, dimensionless.
        seed : int or torch.Generator, optional
            Seed, or a generator on ``clean``'s device.

        Returns
        -------
        torch.Tensor
            ``y`` with ``clean``'s shape, dtype and device; at most
            ``log(I₀ / min_counts)``.
        """
        self._check(clean, "clean")
        counts = self.incident_flux * torch.exp(-clean)
        if not bool(torch.isfinite(counts).all()):
            raise ValueError(
                f"incident_flux={self.incident_flux:g} is too large for these line integrals in {clean.dtype}: "
                "the expected counts I₀·exp(−p) overflow; use float64 or a smaller flux"
            )
        generator = make_generator(seed, clean.device)
        signal = torch.poisson(counts, generator=generator)
        if self.electronic_std > 0:
            signal = signal + self.electronic_std * randn_like(signal, generator)
        return torch.log(self.incident_flux / signal.clamp_min(self.min_counts))

    def variance(self, line_integrals: torch.Tensor) -> torch.Tensor:
        """Approximate variance ``(λ + σ_e²)/λ²`` of each post-log measurement.

        The first-order (delta-method) variance of ``−log(s/I₀)`` at
        ``λ = I₀·exp(−p)``; with ``σ_e = 0`` it is ``1/λ = exp(p)/I₀``.
        Evaluate it at the clean line integrals (the model) or at the noisy
        measurements (plug-in weights, as in practice); its inverse is the
        weight of each measurement in weighted least squares.

        Parameters
        ----------
        line_integrals : torch.Tensor
            ``p``, any shape, real and finite.

        Returns
        -------
        torch.Tensor
            Variances, same shape, in squared line-integral units; infinite
            where no photon is expected (``exp(−p)`` underflows), i.e. weight 0.
        """
        counts = self.expected_counts(line_integrals)
        return (counts + self.electronic_std**2) / counts.square()

    @staticmethod
    def _check(value: torch.Tensor, name: str) -> None:
        check_tensor(value, name, allow_complex=False)
        check_nonempty(value, name)
        check_finite(value, name)

    def __repr__(self) -> str:
        return (
            f"PoissonNoise(incident_flux={self.incident_flux:g}, min_counts={self.min_counts:g}, "
            f"electronic_std={self.electronic_std:g})"
        )
