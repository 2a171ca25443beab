"""Classical reconstructions to compare diffusion-prior methods against.

:func:`cg_sense` is (Tikhonov-damped) least squares by conjugate gradients —
CG-SENSE for MRI (Pruessmann, Weiger, Börnert & Boesiger, "Advances in
sensitivity encoding with arbitrary k-space trajectories", Magn. Reson. Med.
46:638–651, 2001), and the least-squares baseline for any operator.

:func:`tv_reconstruct` solves total-variation regularised least squares with
the primal–dual hybrid gradient method (PDHG) of Chambolle & Pock, "A
first-order primal-dual algorithm for convex problems with applications to
imaging", J. Math. Imaging Vis. 40:120–145, 2011 (Algorithm 1, θ = 1), with
the primal weight (the ratio of the primal and dual steps) re-estimated as in
PDLP: Applegate et al., "Practical large-scale linear programming using
primal-dual hybrid gradient", NeurIPS 2021, Sec. 3.3.

:func:`nlm_bmode` is the classical baseline of ultrasound dehazing:
non-local means on the log-compressed B-mode image.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from invsolve._checks import (
    check_batched_shape,
    check_compute_dtype,
    check_finite,
    check_int,
    check_nonnegative,
    check_same_device,
    check_tensor,
)
from invsolve.operators import FiniteDifference, LinearOperator
from invsolve.operators.base import conjugate_gradient_pinv

__all__ = ["cg_sense", "tv_reconstruct", "nlm_bmode"]

# Fraction of the largest stable step: τσ‖K‖² = STEP_SAFETY² < 1 leaves room
# for the power-iteration estimate of ‖A‖, which approaches it from below.
_STEP_SAFETY = 0.99
# The primal weight is re-estimated at iterations 10, 20, 40, …: the last
# phase of any run (about half of it) is plain PDHG with fixed steps.
_FIRST_WEIGHT_UPDATE = 10


def cg_sense(
    y: torch.Tensor,
    operator: LinearOperator,
    iterations: int = 50,
    tol: float = 1e-6,
    damping: float = 0.0,
) -> torch.Tensor:
    """CG-SENSE: ``argmin_x ‖Ax − y‖² + δ‖x‖²`` by conjugate gradients from zero.

    For MRI, ``operator`` is a :class:`~invsolve.operators.mri.CartesianMRI`
    with coil maps and the result is the SENSE reconstruction; with ``δ = 0``
    CG started at zero converges to the minimum-norm solution (unsampled
    k-space of the image stays zero in the single-coil case).  Early
    stopping (``iterations``) acts as a regulariser on noisy data.

    Parameters
    ----------
    y : torch.Tensor
        Measurements ``(B, *operator.out_shape)``, finite.
    operator : LinearOperator
        The forward model (complex or real).
    iterations : int
        Maximum number of CG iterations (each applies ``AᴴA`` once).
    tol : float
        Stop an item once its normal-equation residual is below ``tol``
        times its initial value.
    damping : float
        Tikhonov weight ``δ >= 0`` in ``y``'s squared units per image unit².

    Returns
    -------
    torch.Tensor
        ``(B, *operator.in_shape)``, dtype of ``Aᴴy``.

    Raises
    ------
    TypeError
        For an ``operator`` that is not a ``LinearOperator``, a ``y`` that is
        not a float32/float64 (or complex) tensor or a non-integer
        ``iterations``.
    ValueError
        For ``y`` of the wrong shape or device, empty or with NaN/Inf, and
        ``iterations < 1`` or a negative or non-finite ``tol``/``damping``.
    FloatingPointError
        If the solve overflowed (finite data of magnitudes near the dtype's
        limit).
    """
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
    _check_measurement(y, operator)
    iterations = check_int(iterations, "iterations")
    tol = check_nonnegative(tol, "tol")
    damping = check_nonnegative(damping, "damping")
    with torch.no_grad():
        x = conjugate_gradient_pinv(operator, y, iterations=iterations, tol=tol, damping=damping)
    return _finite_result(x, "cg_sense")


def _check_measurement(y: torch.Tensor, operator: LinearOperator) -> None:
    """``y`` is a finite, non-empty batch of ``operator``'s measurements in a compute dtype, on its device."""
    check_tensor(y, "y")
    check_compute_dtype(y, "y")
    check_batched_shape(y, operator.out_shape, f"y (measurement of {operator.describe()})")
    check_same_device(y, operator.device, "y")
    check_finite(y, "y")


def _finite_result(x: torch.Tensor, method: str) -> torch.Tensor:
    """``x``, or ``FloatingPointError`` if it holds NaN/Inf (the inputs were finite: an overflow)."""
    if not bool(torch.isfinite(x).all()):
        raise FloatingPointError(
            f"{method} overflowed: its result holds NaN or infinite entries although y was finite; "
            "rescale y (and the weight) towards magnitudes near 1"
        )
    return x


def tv_reconstruct(
    y: torch.Tensor,
    operator: LinearOperator,
    weight: float,
    iterations: int = 500,
    *,
    nonnegative: bool = True,
    x0: torch.Tensor | None = None,
    progress: bool = True,
    return_history: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Isotropic total-variation reconstruction by PDHG (Chambolle & Pock 2011).

    Solves, for every batch item,

        min_x  ½‖A x − y‖²  +  λ·TV(x)   subject to x >= 0 (if ``nonnegative``),

    with the isotropic total variation ``TV(x) = Σ_c Σ_pixels ‖∇x_c‖₂`` of
    forward differences (zero across the far boundary, unit pixel spacing),
    applied to each channel separately: ∇ is
    :class:`~invsolve.operators.FiniteDifference` on every spatial axis and
    TV is :func:`~invsolve.operators.total_variation`.  The problem is written as
    ``min_x F(Kx) + G(x)`` with ``K = [A; s·∇]``, ``F(z, g) = ½‖z − y‖² +
    (λ/s)·‖g‖₂,₁`` and ``G`` the indicator of ``x >= 0``; the scale
    ``s = ‖A‖/‖∇‖`` balances the two blocks so that one step size suits both.
    With the bound ``‖∇‖ <= √(4d)`` (``√8`` for 2D images, ``√12`` for 3D
    volumes) and ``‖A‖`` from ``operator.norm()``, ``‖K‖ <= √2·‖A‖``; the
    steps are ``τ = η/ω`` and ``σ = ηω`` with ``η = 0.99/(√2·‖A‖)``, so
    ``τσ‖K‖² < 1`` always holds.  The primal weight ``ω`` starts at 1 and is
    re-estimated per batch item at iterations 10, 20, 40, … from the distances
    the primal and dual iterates travelled, ``ω ← √(ω·Δy/Δx)`` (PDLP's rule),
    which matters when image and residual have very different sizes, as in
    CT.  The updates come at doubling intervals, so about the last half of
    any run is plain PDHG with fixed steps.  Each iteration applies ``A``
    once and ``Aᵀ`` once.

    Parameters
    ----------
    y : torch.Tensor
        Measurements, ``(B, *operator.out_shape)``, finite.
    operator : LinearOperator
        The forward model ``A`` on real images ``(B, C, *spatial)`` with one
        or more spatial axes, e.g. a ``Mask`` or a ``RayTransform``.
    weight : float
        ``λ >= 0``, in ``y``'s squared units per unit of TV (image value ×
        pixel count); ``0`` gives (non-negative) least squares.
    iterations : int
        Number of PDHG iterations, ``>= 1``.
    nonnegative : bool
        Constrain the image to ``x >= 0`` (attenuation, intensities).
    x0 : torch.Tensor, optional
        Starting image ``(B, *operator.in_shape)`` in ``y``'s real dtype and
        on its device (clipped at 0 if ``nonnegative``); default zeros.
    progress : bool
        Show a tqdm progress bar.
    return_history : bool
        Also return the objective ``½‖Ax − y‖² + λ·TV(x)`` of every iterate.

    Returns
    -------
    x : torch.Tensor
        Reconstruction ``(B, *operator.in_shape)`` in ``y``'s real dtype, on
        ``y``'s device.
    history : torch.Tensor
        Only if ``return_history``: ``(iterations, B)`` objective values
        (float64), row ``k`` for the iterate after ``k + 1`` iterations.

    Raises
    ------
    ValueError
        For a negative or non-finite ``weight``, ``iterations < 1``, non-finite
        or empty ``y`` or ``x0``, shapes or devices that do not match
        ``operator`` or an operator of norm 0.
    TypeError
        For an ``operator`` that is not a real-domain ``LinearOperator``,
        inputs that are not float32/float64 tensors or a non-integer
        ``iterations``.
    FloatingPointError
        If the iteration overflowed (finite data of magnitudes near the
        dtype's limit).

    Examples
    --------
    >>> x_tv = tv_reconstruct(y, RayTransform(geometry), weight=0.01, progress=False)
    """
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be an invsolve LinearOperator, got {type(operator).__name__}")
    if operator.complex_domain:
        raise TypeError(f"operator must act on real images for total variation, got {operator.describe()}")
    if len(operator.in_shape) < 2:
        raise ValueError(
            f"operator.in_shape must be (C, *spatial) with at least one spatial axis, got {operator.in_shape}"
        )
    lam = check_nonnegative(weight, "weight")
    iterations = check_int(iterations, "iterations")
    _check_measurement(y, operator)
    real_dtype = y.real.dtype if y.is_complex() else y.dtype
    batch = y.shape[0]
    if x0 is None:
        x = torch.zeros((batch, *operator.in_shape), dtype=real_dtype, device=y.device)
    else:
        check_tensor(x0, "x0", allow_complex=False)
        check_finite(x0, "x0")
        check_batched_shape(x0, operator.in_shape, f"x0 (image of {operator.describe()})")
        if x0.shape[0] != batch or x0.dtype != real_dtype or x0.device != y.device:
            raise ValueError(
                f"x0 must have batch size {batch}, dtype {real_dtype} and device {y.device} like y, "
                f"got batch {x0.shape[0]}, dtype {x0.dtype}, device {x0.device}"
            )
        x = x0.clamp_min(0) if nonnegative else x0.clone()

    diff = FiniteDifference(operator.in_shape)  # ∇ on every spatial axis, (B, d, C, *spatial)
    norm_a = operator.norm()
    if norm_a == 0:
        raise ValueError(f"operator {operator.describe()} has norm 0: the data do not depend on the image")
    scale = norm_a / diff.norm_bound()  # s = ‖A‖/‖∇‖ (bound √(4d))
    bound = lam / scale  # radius of the dual ball of s·∇
    # Per-item primal weights ω (B,), float64: τ = η/ω, σ = ηω with η = 0.99/‖K‖.
    eta = _STEP_SAFETY / (math.sqrt(2) * norm_a)
    omega = torch.ones(batch, dtype=torch.float64, device=y.device)
    tau, sigma = eta / omega, eta * omega

    history = torch.empty(iterations, batch, dtype=torch.float64, device=y.device) if return_history else None
    with torch.no_grad():
        ax = operator.forward(x)
        dual_data = torch.zeros_like(y)
        dual_grad = torch.zeros((batch, *diff.out_shape), dtype=real_dtype, device=y.device)
        kt_dual = torch.zeros_like(x)  # Kᵀ(dual) = Aᵀ dual_data + s ∇ᵀ dual_grad
        anchor = (x, dual_data, dual_grad)
        next_update = _FIRST_WEIGHT_UPDATE
        for k in tqdm(range(iterations), desc="TV (PDHG)", disable=not progress):
            # Primal step: prox of τG (projection on x >= 0).
            x_new = x - _per_item(tau, x) * kt_dual
            if nonnegative:
                x_new = x_new.clamp_min(0)
            ax_new = operator.forward(x_new)
            # Dual steps at the extrapolated point 2x_new − x: prox of σF* for
            # F(z) = ½‖z − y‖² and projection on the (λ/s)-ball for the TV block.
            grad_change = diff._forward(x_new - x)
            sigma_y = _per_item(sigma, y)
            data_new = (dual_data + sigma_y * (2 * ax_new - ax - y)) / (1 + sigma_y)
            sigma_g = _per_item(sigma, dual_grad)
            grad_new = _project_ball(dual_grad + (sigma_g * scale) * (diff._forward(x_new) + grad_change), bound)
            adjoint = operator.adjoint(data_new)
            kt_new = (adjoint.real if adjoint.is_complex() else adjoint) + scale * diff._adjoint(grad_new)
            x, ax, dual_data, dual_grad, kt_dual = x_new, ax_new, data_new, grad_new, kt_new
            if k + 1 == next_update:
                omega = _update_primal_weight(omega, anchor, (x, dual_data, dual_grad))
                tau, sigma = eta / omega, eta * omega
                anchor, next_update = (x, dual_data, dual_grad), 2 * next_update
            if history is not None:
                history[k] = _objective(ax, y, x, lam, diff)
    x = _finite_result(x, "tv_reconstruct")
    if history is not None:
        return x, history
    return x


def _update_primal_weight(
    omega: torch.Tensor,
    before: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    after: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """PDLP's smoothed primal weight ``ω ← √(ω·Δy/Δx)`` per batch item.

    ``Δx`` and ``Δy`` are the distances the primal and dual iterates travelled
    since the last update (Applegate et al. 2021, Sec. 3.3, with smoothing
    θ = ½); items that did not move keep their weight.  ``before`` and
    ``after`` are ``(x, dual of the data term, dual of the TV term)``.
    """
    x_then, data_then, grad_then = before
    x_now, data_now, grad_now = after
    moved_x = _item_norm(x_now - x_then)
    moved_y = torch.hypot(_item_norm(data_now - data_then), _item_norm(grad_now - grad_then))
    valid = (moved_x > 0) & (moved_y > 0)
    estimate = torch.where(valid, moved_y / torch.where(valid, moved_x, 1.0), omega)
    return torch.sqrt(omega * estimate)


def _per_item(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-item ``(B,)`` values viewed to broadcast against ``like``, ``(B, …)``."""
    shape = (values.shape[0],) + (1,) * (like.dim() - 1)
    return values.to(like.real.dtype if like.is_complex() else like.dtype).reshape(shape)


def _item_norm(value: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each batch item of ``value`` ``(B, …)``, float64 ``(B,)``."""
    return torch.linalg.vector_norm(value.reshape(value.shape[0], -1), dim=1).to(torch.float64)


def _project_ball(grad: torch.Tensor, radius: float) -> torch.Tensor:
    """Project every pixel's gradient vector (axis 1 of ``(B, d, C, *spatial)``) onto the ball of ``radius``."""
    if radius == 0:
        return torch.zeros_like(grad)
    magnitude = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    return grad / (magnitude / radius).clamp_min(1)


def _objective(
    ax: torch.Tensor, y: torch.Tensor, x: torch.Tensor, lam: float, diff: FiniteDifference
) -> torch.Tensor:
    """``½‖Ax − y‖² + λ·TV(x)`` per batch item, float64 ``(B,)``; ``diff`` is ∇ on ``x``'s spatial axes."""
    data = 0.5 * (ax - y).abs().square().reshape(y.shape[0], -1).sum(dim=1)
    tv = torch.linalg.vector_norm(diff._forward(x), dim=1).reshape(x.shape[0], -1).sum(dim=1)
    return (data + lam * tv).to(torch.float64)


def nlm_bmode(
    rf: torch.Tensor,
    strength: float,
    *,
    dynamic_range: float = 60.0,
    reference: torch.Tensor | float | None = None,
    patch_size: int = 5,
    patch_distance: int = 6,
    axial_decimation: int = 1,
) -> torch.Tensor:
    """Non-local means of the B-mode image of RF frames, dB.

    Buades, Coll & Morel, "A non-local algorithm for image denoising", CVPR
    2005: each pixel becomes a weighted mean of pixels whose surrounding
    patches look alike.  On the log-compressed image, speckle and the haze's
    texture act as additive noise; the filter is scikit-image's
    ``denoise_nl_means`` (fast mode), run per frame on the CPU — the
    baseline is evaluated, not differentiated, so its output leaves torch.

    Parameters
    ----------
    rf : torch.Tensor
        Beamformed RF ``(B, 1, n_axial, n_lateral)``, depth along the rows.
    strength : float
        The filter's ``h``, dB (``>= 0``; 0 returns the B-mode image unfiltered).
    dynamic_range : float
        Displayed range, dB.
    reference : torch.Tensor or float, optional
        The 0 dB envelope level (:func:`~invsolve.operators.ultrasound.log_compress`);
        default each frame's maximum.
    patch_size, patch_distance : int
        Patch side and search radius, pixels.
    axial_decimation : int
        Rows of envelope averaged into one row of the image
        (:func:`~invsolve.operators.ultrasound.decimated_envelope`).

    Returns
    -------
    torch.Tensor
        ``(B, 1, n_axial // axial_decimation, n_lateral)`` float64 B-mode in ``[−dynamic_range, 0]`` dB.

    Raises
    ------
    ImportError
        Without scikit-image (the ``ultrasound`` extra).
    ValueError
        For RF that is not ``(B, 1, H, W)`` or not finite, or a negative strength.
    """
    from invsolve.operators.ultrasound import decimated_envelope, log_compress

    rf = check_tensor(rf, "rf", allow_complex=False)
    if rf.dim() != 4 or rf.shape[1] != 1:
        raise ValueError(f"rf must be frames (B, 1, H, W), got shape {tuple(rf.shape)}")
    check_finite(rf, "rf")
    strength = check_nonnegative(strength, "strength")
    patch_size, patch_distance = check_int(patch_size, "patch_size"), check_int(patch_distance, "patch_distance")
    image = log_compress(decimated_envelope(rf.double(), axial_decimation), dynamic_range, reference)
    if strength == 0:
        return image
    try:
        from skimage.restoration import denoise_nl_means
    except ImportError as error:  # pragma: no cover - scikit-image is in the ultrasound extra
        raise ImportError("nlm_bmode needs scikit-image: pip install 'invsolve[ultrasound]'") from error
    frames = [
        denoise_nl_means(frame, h=strength, patch_size=patch_size, patch_distance=patch_distance, fast_mode=True)
        for frame in image[:, 0].cpu().numpy()
    ]
    return torch.stack([torch.from_numpy(frame) for frame in frames])[:, None].to(image.device).clamp(-dynamic_range, 0.0)
