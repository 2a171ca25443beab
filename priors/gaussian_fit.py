"""A low-rank Gaussian fit of a prior's training images: the analytic warm start.

At high noise levels a diffusion model's denoiser is close to that of the
Gaussian with the data's mean and covariance: the score of the noisy
marginal is dominated by the first two moments, and the outline of a sample
is fixed by the leading principal components before the details appear
(Wang & Vastola 2023, "Diffusion Models Generate Images Like Painters: an
Analytical Theory of Outline First, Details Later", arXiv:2303.02490).  The
Gaussian's posterior under a linear measurement is available in closed form,
so a sampler can start from a draw of it instead of pure noise and skip the
early, high-noise steps.

:class:`LowRankGaussian` stores that Gaussian compactly, in the prior's
*network* units (the range the denoiser sees, ``prior.to_network(x)``)::

    N(μ, U diag(λ) Uᵀ + s² I)

with ``k`` orthonormal principal directions (the rows of ``U``), their
variances ``λ`` above an isotropic residual variance ``s²`` that makes the
covariance full rank — probabilistic PCA (Tipping & Bishop 1999), whose
maximum-likelihood estimate :meth:`LowRankGaussian.fit` computes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from invsolve._checks import check_finite, check_int, check_tensor
from invsolve._random import randn_like

__all__ = ["LowRankGaussian"]


def _image_shape(image_shape: object) -> tuple[int, ...]:
    if isinstance(image_shape, (str, bytes)) or not isinstance(image_shape, Sequence):
        raise TypeError(f"image_shape must be a sequence of ints (C, *spatial), got {image_shape!r}")
    shape = tuple(check_int(n, "image_shape entries", 1) for n in image_shape)
    if len(shape) < 2:
        raise ValueError(f"image_shape must be (C, *spatial) with at least one spatial axis, got {shape}")
    return shape


class LowRankGaussian(nn.Module):
    """The Gaussian ``N(mean, U diag(λ) Uᵀ + s² I)`` over images, in network units.

    The usual way to get one is :meth:`fit` (principal component analysis
    of training images); the constructor builds an empty one (all zeros) of
    a given size, for a checkpoint loader to fill with ``load_state_dict``.
    Why a diffusion prior carries one: at high noise the denoiser of a
    trained model is nearly that of the Gaussian of its data, which fixes
    the images' outline first (Wang & Vastola 2023, arXiv:2303.02490), and
    the Gaussian's posterior is closed-form — a warm start for samplers.

    Parameters
    ----------
    image_shape : sequence of int
        Shape of one image, ``(C, *spatial)``; ``n = C·prod(spatial)`` pixels.
    rank : int
        Number ``k`` of principal components, ``1 <= k <= n``.
    dtype : torch.dtype
        Floating dtype of the buffers (float32; :class:`GaussianPrior` uses
        float64 for its exact Gaussian).

    Attributes
    ----------
    mean : torch.Tensor
        Buffer ``(C, *spatial)``: the mean image, network units.
    components : torch.Tensor
        Buffer ``(k, n)``: orthonormal rows ``U`` (principal directions of
        the flattened images), by decreasing variance.
    variances : torch.Tensor
        Buffer ``(k,)``: ``λ >= 0``, the variance along each row of
        ``components`` beyond the residual (so the total along row ``i`` is
        ``λ_i + s²``), network units squared.
    residual_variance : torch.Tensor
        0-d buffer ``s² >= 0``: the variance the ``k`` components do not
        explain, per remaining direction (the mean over the ``n − k``
        directions orthogonal to them), present in every direction so the
        covariance is full rank.
    """

    def __init__(self, image_shape: Sequence[int], rank: int, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        shape = _image_shape(image_shape)
        pixels = math.prod(shape)
        rank = check_int(rank, "rank", 1)
        if rank > pixels:
            raise ValueError(
                f"rank must be at most the number of pixels n = {pixels} of an image of shape {shape}, got {rank}"
            )
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating dtype, got {dtype}")
        self.register_buffer("mean", torch.zeros(shape, dtype=dtype))
        self.register_buffer("components", torch.zeros(rank, pixels, dtype=dtype))
        self.register_buffer("variances", torch.zeros(rank, dtype=dtype))
        self.register_buffer("residual_variance", torch.zeros((), dtype=dtype))

    @classmethod
    def fit(cls, images: torch.Tensor, rank: int) -> LowRankGaussian:
        """The Gaussian of ``images``: their mean and top-``rank`` principal components.

        With the centred data matrix ``X`` (``N × n``) and its singular
        value decomposition ``X = W S Vᵀ``, the sample covariance is
        ``XᵀX / (N − 1) = V diag(e) Vᵀ`` with ``e = S² / (N − 1)``.  The
        components are the first ``k = rank`` rows of ``Vᵀ`` (each with the
        sign that makes its largest-magnitude entry positive, so the result
        does not depend on the SVD's sign convention); ``s²`` is the mean
        of the other ``n − k`` eigenvalues (0 if ``k = n``; the ones beyond
        ``N − 1`` are 0) and ``λ = e[:k] − s²``.  This is the
        maximum-likelihood probabilistic PCA (Tipping & Bishop 1999): the
        model's covariance has the sample's top-``k`` eigenpairs, ``s²`` in
        every other direction, and the sample's total variance; it is
        exact for data drawn from such a Gaussian.  Computed in float64
        with :func:`torch.linalg.svd` on the images' device, stored in
        float32.  The leading components carry an image's outline, which
        diffusion models settle first (Wang & Vastola 2023,
        arXiv:2303.02490).

        Parameters
        ----------
        images : torch.Tensor
            Real ``(N, C, *spatial)`` training images, already in network
            units (``prior.to_network(x)``), ``N >= 2``.
        rank : int
            Number of components, ``1 <= rank <= min(N − 1, n)`` (``N``
            centred images span at most ``N − 1`` directions).

        Returns
        -------
        LowRankGaussian
            On the images' device.

        Raises
        ------
        TypeError
            ``images`` not a real floating tensor, ``rank`` not an int.
        ValueError
            Fewer than 3 dims, fewer than 2 images, non-finite values, or a
            ``rank`` outside ``[1, min(N − 1, n)]``.
        """
        check_tensor(images, "images", allow_complex=False)
        if images.dim() < 3:
            raise ValueError(f"images must be shaped (N, C, *spatial), got shape {tuple(images.shape)}")
        count, shape = images.shape[0], tuple(images.shape[1:])
        pixels = math.prod(shape)
        if count < 2:
            raise ValueError(f"need at least 2 images to estimate a covariance, got {count}")
        rank = check_int(rank, "rank", 1)
        if rank > min(count - 1, pixels):
            raise ValueError(
                f"rank must be at most min(N - 1, n) = min({count - 1}, {pixels}) = {min(count - 1, pixels)} "
                f"for N = {count} images of shape {shape} (n = {pixels} pixels), got {rank}"
            )
        check_finite(images, "images")
        data = images.detach().reshape(count, pixels).to(torch.float64)
        mean = data.mean(dim=0)
        _, singular, rows = torch.linalg.svd(data - mean, full_matrices=False)
        spectrum = singular**2 / (count - 1)
        components = rows[:rank]
        peaks = components.abs().argmax(dim=1, keepdim=True)
        components = components * torch.sign(components.gather(1, peaks))
        rest = spectrum[rank:].sum() / (pixels - rank) if rank < pixels else spectrum.new_zeros(())
        residual = rest.clamp_min(0)
        variances = (spectrum[:rank] - residual).clamp_min(0)
        gaussian = cls(shape, rank).to(images.device)
        gaussian.mean.copy_(mean.reshape(shape))
        gaussian.components.copy_(components)
        gaussian.variances.copy_(variances)
        gaussian.residual_variance.copy_(residual)
        return gaussian

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, ``(C, *spatial)``."""
        return tuple(self.mean.shape)

    @property
    def rank(self) -> int:
        """Number ``k`` of principal components."""
        return int(self.components.shape[0])

    @property
    def explained_variance(self) -> float:
        """Fraction of the total variance along the ``k`` components: ``(Σλ + k·s²) / (Σλ + n·s²)``.

        For a :meth:`fit`, PCA's explained-variance ratio of the top ``k``
        components (the sum of their sample eigenvalues over the sample's
        total variance); 0 for an empty one.
        """
        rank, pixels = self.components.shape
        summed = float(self.variances.double().sum())
        residual = float(self.residual_variance)
        total = summed + pixels * residual
        return (summed + rank * residual) / total if total > 0 else 0.0

    def _flat(self, v: torch.Tensor, name: str) -> torch.Tensor:
        check_tensor(v, name, allow_complex=False)
        if v.dim() != len(self.image_shape) + 1 or tuple(v.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{name} must be shaped (B, *image_shape) = (B, {', '.join(map(str, self.image_shape))}), "
                f"got {tuple(v.shape)}"
            )
        return v.reshape(v.shape[0], -1)

    def cov_matvec(self, v: torch.Tensor) -> torch.Tensor:
        """The covariance applied to each image: ``(U diag(λ) Uᵀ + s² I) v``.

        Parameters
        ----------
        v : torch.Tensor
            Real ``(B, C, *spatial)`` images, network units.

        Returns
        -------
        torch.Tensor
            ``(B, C, *spatial)`` in ``v``'s dtype and on its device, network
            units squared times ``v``'s.
        """
        flat = self._flat(v, "v")
        components = self.components.to(device=v.device, dtype=v.dtype)
        variances = self.variances.to(device=v.device, dtype=v.dtype)
        residual = self.residual_variance.to(device=v.device, dtype=v.dtype)
        out = ((flat @ components.T) * variances) @ components + residual * flat
        return out.reshape(v.shape)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` exact draws ``μ + Uᵀ(√λ ξ) + s η`` with ``ξ ~ N(0, I_k)``, ``η ~ N(0, I_n)``.

        Parameters
        ----------
        n : int
            Number of draws, ``>= 1``.
        generator : torch.Generator, optional
            Source of ``ξ`` (drawn first, ``(n, k)``) and ``η`` (``(n, n_pixels)``),
            drawn on the generator's device as :func:`invsolve._random.randn_like`
            does; ``None`` uses torch's global random state.

        Returns
        -------
        torch.Tensor
            ``(n, C, *spatial)`` in network units, in the buffers' dtype and
            on their device.
        """
        n = check_int(n, "n", 1)
        like = self.components.new_empty((n, self.rank))
        xi = randn_like(like, generator)
        eta = randn_like(like.new_empty((n, self.components.shape[1])), generator)
        draws = self.mean.reshape(1, -1) + (xi * self.variances.clamp_min(0).sqrt()) @ self.components
        draws = draws + self.residual_variance.clamp_min(0).sqrt() * eta
        return draws.reshape(n, *self.image_shape)

    def to_dense(self) -> torch.Tensor:
        """The covariance as a dense float64 ``(n, n)`` matrix, network units squared (for tests and small images)."""
        components = self.components.to(torch.float64)
        dense = (components.T * self.variances.to(torch.float64)) @ components
        return dense + float(self.residual_variance) * torch.eye(
            dense.shape[0], dtype=torch.float64, device=dense.device
        )

    def extra_repr(self) -> str:
        return f"image_shape={self.image_shape}, rank={self.rank}"
