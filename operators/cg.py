"""Batched conjugate gradients: the one linear solver of the package.

Every least-squares step in invsolve goes through :func:`cg`: the
pseudo-inverse of an operator (:meth:`LinearOperator.pinv`), CG-SENSE, the
data-consistency steps of the DDS and DiffPIR samplers, the exact Gaussian
likelihood step of PnP-DM and the Gaussian warm start
(docs/design.md, "Linear solves").

The method is Hestenes & Stiefel, "Methods of conjugate gradients for
solving linear systems", J. Res. Natl. Bur. Stand. 49(6), 1952, applied to
every batch item independently, with the real inner product ``Re⟨u, v⟩``,
so that it also solves real-linear systems on complex tensors (a real image
seen through complex k-space, for instance).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from invsolve._checks import check_compute_dtype, check_int, check_nonnegative, check_tensor

__all__ = ["cg"]


def cg(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    x0: torch.Tensor | None = None,
    iterations: int = 100,
    tol: float = 1e-6,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Solve ``M x = b`` for a symmetric positive (semi-)definite ``M`` by conjugate gradients.

    Parameters
    ----------
    matvec : callable
        ``v ↦ M v`` on tensors shaped like ``b``; ``M`` must be self-adjoint
        and positive semi-definite under ``Re⟨u, v⟩`` for every batch item.
    b : torch.Tensor
        Right-hand sides ``(B, ...)``, real or complex; item ``i`` is solved
        on its own.
    x0 : torch.Tensor, optional
        Warm start shaped like ``b`` (default zeros).  Started at zero on a
        consistent singular system, CG converges to the minimum-norm
        solution.
    iterations : int
        Maximum number of iterations (one ``matvec`` each), ``>= 0``.
    tol : float
        An item stops once its residual norm ``‖b − M x‖`` falls below
        ``tol · ‖b‖``; ``0`` runs all ``iterations`` unless the residual
        reaches rounding level (100 ulp of ``‖b‖``) first.
    reduce : callable, optional
        Applied to every vector of per-item partial inner products ``(B,)``
        before use: with the unknowns split over processes (slabs of a volume
        on torch.distributed ranks), a sum over the processes (an all-reduce),
        so that every process takes the same steps and stops together.
        Default: none (all unknowns are here).

    Returns
    -------
    torch.Tensor
        The solution, shaped and typed like ``b``.

    Examples
    --------
    >>> from invsolve.operators import cg
    >>> x = cg(lambda v: A.normal(v) + 0.1 * v, A.adjoint(y), iterations=20)   # damped least squares
    """
    check_tensor(b, "b")
    check_compute_dtype(b, "b")
    if b.dim() < 1 or b.shape[0] < 1:
        raise ValueError(f"b must be batched (B, ...) with B >= 1, got shape {tuple(b.shape)}")
    iterations = check_int(iterations, "iterations", minimum=0)
    tol = check_nonnegative(tol, "tol")
    batch = b.shape[0]
    item_dims = tuple(range(1, b.dim()))

    def inner(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        values = (u.conj() * v).real.sum(dim=item_dims) if item_dims else (u.conj() * v).real
        return values if reduce is None else reduce(values)

    def per_item(values: torch.Tensor) -> torch.Tensor:
        return values.reshape(batch, *([1] * (b.dim() - 1)))

    if x0 is None:
        x = torch.zeros_like(b)
        residual = b.clone()
    else:
        check_tensor(x0, "x0")
        if x0.shape != b.shape:
            raise ValueError(f"x0 must be shaped like b {tuple(b.shape)}, got {tuple(x0.shape)}")
        x = x0.to(b.dtype).clone()
        residual = b - matvec(x)
    # Below ~100 ulp of ‖b‖ a residual is rounding noise: stop there even with tol = 0, since a
    # further step along a direction of (numerically) zero curvature would divide by noise.
    floor = 100 * torch.finfo(b.real.dtype if b.is_complex() else b.dtype).eps
    threshold = max(tol, floor) ** 2 * inner(b, b)
    rs_old = inner(residual, residual)
    direction = residual.clone()
    tiny = torch.finfo(rs_old.dtype).tiny
    for _ in range(iterations):
        active = rs_old > threshold
        if not bool(active.any()):
            break
        m_direction = matvec(direction)
        curvature = inner(direction, m_direction)
        step = torch.where(active & (curvature > 0), rs_old / curvature.clamp_min(tiny), 0.0)
        x = x + per_item(step) * direction
        residual = residual - per_item(step) * m_direction
        rs_new = inner(residual, residual)
        beta = torch.where(active & (rs_old > 0), rs_new / rs_old.clamp_min(tiny), 0.0)
        direction = residual + per_item(beta) * direction
        rs_old = torch.where(active, rs_new, rs_old)
    return x
