"""Joint two-prior sampling: tissue and haze from their sum (ultrasound dehazing).

Stevens, Meral, Yu, Apostolakis, Robert, Schirris, Wijkstra, van Sloun,
"Dehazing Ultrasound using Diffusion Models", IEEE TMI 43(10), 2024
(Algorithm 1), after the authors' joint-diffusion code: the tissue ``x`` and
the haze ``h`` have their own diffusion priors, run as one state ``[x, h]``
(:class:`~invsolve.priors.StackedPrior`) through ancestral (DDPM) reverse
steps; after each step both parts move along the gradient of the joint
log-likelihood of ``y = A[x; h] + n`` at their Tweedie estimates, the tissue
with weight ``λ`` and the haze with weight ``κ``:

* ``guidance="pigdm"`` (Song, Vahdat, Mardani & Kautz, "Pseudoinverse-Guided
  Diffusion Models for Inverse Problems", ICLR 2023):
  ``g = J_{x̂₀}ᵀ Aᵀ (r_t² A Aᵀ + σ² I)⁻¹ (y − A x̂₀)``, ``r_t² = σ_t²/(α_t² + σ_t²)``
  (the Tweedie variance of unit-variance data; with companding, seen through
  the expansion's slope at ``x̂₀``: ``A diag(r_t² E'²) Aᵀ``), step
  ``w · r_t² · g`` — the authors' update; the measurement-space solve is
  conjugate gradients (one iteration for
  :class:`~invsolve.operators.ultrasound.HazyMeasurement` without companding,
  whose ``A Aᵀ = (1 + γ²) I``);
* ``guidance="dps"`` (Chung et al., ICLR 2023): step ``−w · ∇_{x_t} ‖y − A x̂₀‖``;
  with companding the distance is the paper's, between the companded data
  and the companded mixture, ``‖C(y) − C(A E(x̂₀))‖`` (RF residuals span the
  whole dynamic range, and so would the step).

With ``mu`` the priors see μ-law companded RF (what they were trained on)
and the measurement is RF: the Tweedie estimates are expanded
(:func:`~invsolve.operators.ultrasound.mu_law_expand`) before ``A``, so the
mixing happens in RF, as in the paper's ``C(C⁻¹(x) + γ C⁻¹(h))``; the
gradient flows through the expansion.  With ``tau < 1`` the run starts at
time ``τ`` (CCDF, Chung, Sim & Ye, CVPR 2022): the tissue from the
measurement diffused forward (companded first with ``mu``), the haze from
noise, as in the authors' code.

Units: the weights act in the priors' network range; the measurement and
``noise_std`` are physical (RF) units.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from invsolve._checks import check_nonnegative, check_positive
from invsolve._random import randn_like
from invsolve.operators import LinearOperator, cg
from invsolve.priors import DiffusionPrior, StackedPrior

from .base import Report, Sampler, register_sampler
from .diffusion import alpha_sigma_at
from .problem import Problem, check_operator_fits_prior

__all__ = ["JointDehaze"]

#: guidance rules (module docstring)
GUIDANCES = ("pigdm", "dps")
#: conjugate-gradient iterations of PiGDM's measurement-space solve
_PIGDM_CG_ITERATIONS = 20


@register_sampler
@dataclass
class JointDehaze(Sampler):
    """Tissue and haze sampled jointly with two priors (module docstring).

    Parameters
    ----------
    tissue_weight : float
        ``λ``, the step weight of the tissue part, ``>= 0``.
    haze_weight : float
        ``κ``, the step weight of the haze part, ``>= 0``.
    guidance : {"pigdm", "dps"}
        The likelihood step.
    tau : float
        Diffusion time to start from, in ``(0, 1]``; 1 starts both parts from noise.
    mu : float, optional
        μ of the companding the priors were trained on; ``None`` (default):
        the priors see the measurement's own units.
    """

    name = "joint-dehaze"
    default_steps = 200
    min_steps = 2
    draws_samples = True

    tissue_weight: float = 1.0
    haze_weight: float = 1.0
    guidance: str = "pigdm"
    tau: float = 1.0
    mu: float | None = None

    def __post_init__(self) -> None:
        check_nonnegative(self.tissue_weight, "tissue_weight")
        check_nonnegative(self.haze_weight, "haze_weight")
        if self.guidance not in GUIDANCES:
            raise ValueError(f"guidance must be one of {', '.join(GUIDANCES)}, got {self.guidance!r}")
        check_positive(self.tau, "tau")
        if self.tau > 1:
            raise ValueError(f"tau must be in (0, 1], got {self.tau!r}")
        if self.mu is not None:
            check_positive(self.mu, "mu")

    def check_operator(self, operator: LinearOperator, prior: DiffusionPrior) -> None:
        """The prior must be a StackedPrior of two parts (tissue, haze) and the operator take the stack."""
        if not isinstance(prior, StackedPrior) or len(prior.channels) != 2:
            raise ValueError(
                f"sampler {self.name!r} needs invsolve.priors.StackedPrior([tissue, haze]) (two parts), got "
                f"{type(prior).__name__}"
            )
        check_operator_fits_prior(operator, prior)

    def check(self, problem: Problem, prior: DiffusionPrior, steps: int, start_time: float | None) -> None:
        """:meth:`Sampler.check`, a measurement, and one shaped like the tissue when ``tau < 1``."""
        if isinstance(problem, Problem) and problem.likelihood is None:
            raise ValueError(f"sampler {self.name!r} reconstructs from measurements: the problem has none")
        super().check(problem, prior, steps, start_time)
        tissue_shape = (prior.channels[0], *prior.image_shape[1:])
        if self.tau < 1 and tuple(problem.y.shape[1:]) != tissue_shape:
            raise ValueError(
                f"tau < 1 starts the tissue from the measurement, which must then be shaped like the tissue "
                f"{tissue_shape}; got y shaped {tuple(problem.y.shape[1:])} (use tau=1)"
            )

    def _expand(self, companded: torch.Tensor) -> torch.Tensor:
        """The priors' physical values as the measurement's units (μ-law expansion, or the identity)."""
        if self.mu is None:
            return companded
        from invsolve.operators.ultrasound import mu_law_expand

        return mu_law_expand(companded, self.mu)

    def _slope(self, companded: torch.Tensor) -> torch.Tensor | float:
        """``d expand / d companded`` at ``companded`` (1 without companding)."""
        if self.mu is None:
            return 1.0
        from invsolve.operators.ultrasound import mu_law_slope

        return mu_law_slope(companded, self.mu)

    def _start(self, problem: Problem, prior: StackedPrior, generator: torch.Generator | None) -> torch.Tensor:
        """The state at ``τ``: noise, or the measurement diffused forward (tissue) beside noise (haze)."""
        if self.tau == 1:
            return prior.initial_noise(problem.batch_size, generator)
        shape = (problem.batch_size, *prior.image_shape)
        noise = randn_like(torch.empty(shape, dtype=prior.dtype, device=prior.device), generator)
        tissue = problem.y.to(prior.dtype)
        if self.mu is not None:
            from invsolve.operators.ultrasound import mu_law_compress

            tissue = mu_law_compress(tissue.clamp(-1.0, 1.0), self.mu)
        alpha, sigma = alpha_sigma_at(prior, self.tau)
        start = noise.clone()
        start[:, : prior.channels[0]] = alpha * prior.to_network(tissue) + sigma * noise[:, : prior.channels[0]]
        return start

    def _run(
        self,
        problem: Problem,
        prior: DiffusionPrior,
        steps: int,
        generator: torch.Generator | None,
        report: Report,
        start_time: float | None,
        progress: bool,
    ) -> torch.Tensor:
        x = self._start(problem, prior, generator)
        scale, batch = prior.normalization.scale, problem.batch_size
        weights = torch.cat(
            [torch.full((n,), w, dtype=x.dtype) for n, w in zip(prior.channels, (self.tissue_weight, self.haze_weight))]
        ).to(x.device).reshape(1, -1, *([1] * (x.dim() - 2)))
        operator, noise_variance = problem.operator, problem.noise_std**2
        pairs = prior.schedule.reverse_steps(steps, self.tau)
        with torch.enable_grad():
            for index, (t, s) in enumerate(tqdm(pairs, desc=self.name, disable=not progress)):
                x = x.detach().requires_grad_(True)
                x0_hat = prior.denoise(x, t)
                measured = self._expand(prior.to_physical(x0_hat))
                residual = problem.residual(measured)
                if self.guidance == "pigdm":
                    alpha, sigma = alpha_sigma_at(prior, t)
                    spread = sigma**2 / (alpha**2 + sigma**2)
                    # the Tweedie covariance r_t²·I in network units, seen in the measurement's units
                    # through the (linearised) expansion: r_t² s² E'(x̂₀)²
                    variance = spread * scale**2 * self._slope(prior.to_physical(x0_hat.detach())) ** 2

                    def covariance(v: torch.Tensor) -> torch.Tensor:
                        return operator(variance * operator.adjoint(v)) + noise_variance * v

                    with torch.no_grad():
                        weighted = cg(covariance, residual.detach(), iterations=_PIGDM_CG_ITERATIONS, tol=1e-10)
                    image = operator(measured)
                    inner = (image.conj() * weighted).real if image.is_complex() else image * weighted
                    (gradient,) = torch.autograd.grad(inner.sum(), x)
                    step = spread * gradient
                else:
                    if self.mu is not None:  # the paper's likelihood: companded data against the companded mixture
                        from invsolve.operators.ultrasound import mu_law_compress

                        mixture = (problem.y - residual).clamp(-1.0, 1.0)
                        residual = mu_law_compress(problem.y.clamp(-1.0, 1.0), self.mu) - mu_law_compress(mixture, self.mu)
                    distance = torch.linalg.vector_norm((residual / scale).reshape(batch, -1), dim=1)
                    (gradient,) = torch.autograd.grad(distance.sum(), x)
                    step = -gradient
                with torch.no_grad():
                    x = prior.ancestral_step(x, x0_hat.detach(), t, s, generator) + weights * step
                report(index, len(pairs), t, x, x0_hat)
        return prior.to_physical(x.detach())
