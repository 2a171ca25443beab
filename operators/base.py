"""Linear operators: the forward models of imaging instruments.

A :class:`LinearOperator` maps a batch of images ``x`` shaped ``(B, *in_shape)``
to a batch of measurements ``y`` shaped ``(B, *out_shape)``; ``in_shape`` and
``out_shape`` exclude the batch dimension, and every image dimension follows the
package convention ``(C, *spatial)``.  Each operator provides its exact adjoint,
the normal operator ``AᴴA`` and its spectral norm, and composes with others:
``A @ B`` (composition), ``c * A`` (scalar multiple), ``A + B`` (sum) and
:func:`stack` (measurements of several operators side by side).

Operators are :class:`torch.nn.Module` objects so that ``.to(device)`` moves
their tensors; the same code runs on CPU and CUDA.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import nn

from invsolve._checks import (
    check_batched_shape,
    check_compute_dtype,
    check_finite,
    check_int,
    check_nonnegative,
    check_same_device,
    check_tensor,
)

from .cg import cg

__all__ = ["LinearOperator", "KernelOperator", "MatrixOperator", "stack", "dot_test", "power_iteration"]


class LinearOperator(nn.Module):
    """Base class of every linear forward model.

    Subclasses implement :meth:`_forward` and :meth:`_adjoint` on validated
    inputs and may override :meth:`_normal` (``AᴴA``) and :meth:`_pinv` where a
    faster or closed form exists.

    Parameters
    ----------
    in_shape : sequence of int
        Shape of one image, ``(C, *spatial)``, without the batch dimension.
    out_shape : sequence of int
        Shape of one measurement, without the batch dimension.
    complex_domain, complex_range : bool
        Whether images / measurements are complex-valued (MRI); used by
        :func:`dot_test` and the power iteration to draw test vectors.
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        complex_domain: bool = False,
        complex_range: bool = False,
    ) -> None:
        super().__init__()
        self.in_shape = _as_shape(in_shape, "in_shape")
        self.out_shape = _as_shape(out_shape, "out_shape")
        self.complex_domain = complex_domain
        self.complex_range = complex_range
        self._cached_norm: float | None = None

    # -- to be implemented by subclasses -------------------------------------------
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return self._adjoint(self._forward(x))

    def _pinv(self, y: torch.Tensor) -> torch.Tensor:
        return conjugate_gradient_pinv(self, y)

    def _measured(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        """``(AᴴA + δI)⁺ rhs`` in closed form, or ``None`` where there is none.

        Operators whose normal operator is diagonal in a known basis (masks,
        single-coil Cartesian MRI) override this; the least-squares steps of
        :class:`~invsolve.operators.GaussianLikelihood` use it instead of
        conjugate gradients when it is available.  ``δ = 0`` gives the
        pseudo-inverse (zero on the null space of ``A``).
        """
        return None

    #: ``AᴴA = I`` and ``AAᴴ = I``: a bijective isometry (e.g. ComplexAsChannels),
    #: so that ``(B∘A)ᴴ(B∘A) + δI`` is solved through ``B``'s closed form
    unitary: bool = False

    # -- public, validated interface -----------------------------------------------
    @property
    def device(self) -> torch.device | None:
        """Device of the operator's tensors, or ``None`` if it holds none."""
        for tensor in self.buffers():
            return tensor.device
        for tensor in self.parameters():
            return tensor.device
        return None

    # The checks of forward/adjoint/normal read metadata only (type, dtype, shape, device):
    # these run inside every solver's loop, where a pass over the data for finiteness
    # would cost as much as a mask or an FFT itself (docs/design.md, "Errors").  Data are
    # checked for NaN/Inf where they enter a computation: pinv, FBP, reconstruct(), the
    # baselines and the oracle.
    def _check_image(self, x: torch.Tensor, name: str = "x") -> None:
        check_tensor(x, name)
        check_compute_dtype(x, name)
        check_batched_shape(x, self.in_shape, f"{name} (input of {self.describe()})")
        check_same_device(x, self.device, name)

    def _check_measurement(self, y: torch.Tensor, name: str = "y") -> None:
        check_tensor(y, name)
        check_compute_dtype(y, name)
        check_batched_shape(y, self.out_shape, f"{name} (measurement of {self.describe()})")
        check_same_device(y, self.device, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``A``: ``(B, *in_shape) -> (B, *out_shape)``.

        ``x`` must be a float32/float64 (or complex) tensor with ``B >= 1`` on
        the operator's device (``TypeError``/``ValueError`` otherwise).  It is
        not scanned for NaN or Inf (this runs inside solvers' loops): such
        entries propagate into the result like any linear map's.
        """
        self._check_image(x)
        return self._forward(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """Apply the adjoint ``Aᴴ``: ``(B, *out_shape) -> (B, *in_shape)``; checked like :meth:`forward`."""
        self._check_measurement(y)
        return self._adjoint(y)

    def normal(self, x: torch.Tensor) -> torch.Tensor:
        """Apply ``AᴴA``: ``(B, *in_shape) -> (B, *in_shape)``; checked like :meth:`forward`."""
        self._check_image(x)
        return self._normal(x)

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Minimum-norm least-squares solution ``A⁺y``, ``(B, *in_shape)``.

        Closed form where the operator has one, otherwise conjugate gradients
        on the normal equations started at zero (which converge to the
        minimum-norm solution).  ``y`` is checked like :meth:`forward`'s
        input and must be finite (``ValueError`` naming the first NaN/Inf).
        """
        self._check_measurement(y)
        check_finite(y, "y")
        return self._pinv(y)

    def measured(self, y: torch.Tensor) -> torch.Tensor:
        """``y`` with the entries that this operator never writes set to zero, ``(B, *out_shape)``.

        Some operators' outputs hold entries that are zero for every image: the
        hidden pixels of a :class:`~invsolve.operators.Mask`, the unsampled
        k-space of :class:`~invsolve.operators.mri.CartesianMRI`.  A value of
        ``y`` there is not a measurement (typically noise that a simulation
        added to the whole array), so the likelihood's residual ``y − A x``,
        its norm (DPS's step size) and the baselines' objectives read ``y``
        through this projection.  Every other operator returns ``y`` unchanged.
        ``y`` is checked like :meth:`adjoint`'s input.
        """
        self._check_measurement(y)
        return self._measured(y)

    @property
    def T(self) -> LinearOperator:  # noqa: N802 - the usual mathematical name
        """The adjoint as an operator."""
        return _Adjoint(self)

    def norm(self, iterations: int = 200, tol: float = 1e-7, seed: int = 0) -> float:
        """Spectral norm ``‖A‖₂`` by power iteration on ``AᴴA`` (cached).

        Parameters
        ----------
        iterations : int
            Maximum number of power iterations.
        tol : float
            Stop once the relative change of the estimate is below ``tol``.
        seed : int
            Seed of the random start vector.
        """
        if self._cached_norm is None:
            iterations = check_int(iterations, "iterations")
            tol = check_nonnegative(tol, "tol")
            seed = check_int(seed, "seed", minimum=0)
            self._cached_norm = _power_iteration(self, iterations, tol, seed)
        return self._cached_norm

    def to_dense(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The matrix of ``A``, shaped ``(prod(out_shape), prod(in_shape))``.

        Built by applying ``A`` to the canonical basis; meant for small
        operators (tests, the Gaussian oracle).  ``dtype`` is float32 or
        float64 (the matching complex dtype for complex images).
        """
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        dtype = _domain_dtype(self, dtype)
        n_in = math.prod(self.in_shape)
        basis = torch.eye(n_in, dtype=dtype, device=self.device).reshape(n_in, *self.in_shape)
        columns = self._forward(basis).reshape(n_in, -1)
        return columns.T.contiguous()

    def describe(self) -> str:
        """Short human-readable description used in error messages."""
        return f"{type(self).__name__}{self.in_shape}->{self.out_shape}"

    def extra_repr(self) -> str:
        return f"in_shape={self.in_shape}, out_shape={self.out_shape}"

    # -- algebra -------------------------------------------------------------------
    def __matmul__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Composition(self, other)

    def __mul__(self, scalar: object) -> LinearOperator:
        if isinstance(scalar, LinearOperator) or not isinstance(scalar, (int, float, complex)):
            return NotImplemented
        return _Scaled(self, scalar)

    __rmul__ = __mul__

    def __neg__(self) -> LinearOperator:
        return _Scaled(self, -1.0)

    def __add__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Sum(self, other)

    def __sub__(self, other: object) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return _Sum(self, _Scaled(other, -1.0))


class KernelOperator(LinearOperator):
    """An operator whose two directions are hand-written kernels.

    Subclasses implement :meth:`_kernel_forward` and :meth:`_kernel_adjoint`
    (e.g. a gather and the matching scatter) without building an autograd
    graph; this class makes each direction differentiable with the other as
    its gradient, which is exact because the two are transposes.
    """

    def _kernel_forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _kernel_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return _KernelApply.apply(x, self, True)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return _KernelApply.apply(y, self, False)


class _KernelApply(torch.autograd.Function):
    """One direction of a :class:`KernelOperator`; its gradient is the other direction."""

    @staticmethod
    def forward(ctx, value: torch.Tensor, op: KernelOperator, is_forward: bool) -> torch.Tensor:
        ctx.op, ctx.is_forward = op, is_forward
        return op._kernel_forward(value) if is_forward else op._kernel_adjoint(value)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _KernelApply.apply(grad.contiguous(), ctx.op, not ctx.is_forward), None, None


class MatrixOperator(LinearOperator):
    """An explicit matrix ``A`` acting on flattened images (small problems, tests).

    Parameters
    ----------
    matrix : torch.Tensor
        ``(prod(out_shape), prod(in_shape))``, real or complex.
    in_shape, out_shape : sequence of int
        Image and measurement shapes; ``out_shape`` defaults to ``(rows,)``.
    """

    def __init__(
        self, matrix: torch.Tensor, in_shape: Sequence[int], out_shape: Sequence[int] | None = None
    ) -> None:
        check_tensor(matrix, "matrix")
        if matrix.dim() != 2:
            raise ValueError(f"matrix must be 2-D, got shape {tuple(matrix.shape)}")
        out_shape = (matrix.shape[0],) if out_shape is None else out_shape
        super().__init__(in_shape, out_shape, complex_domain=matrix.is_complex(), complex_range=matrix.is_complex())
        if matrix.shape != (math.prod(self.out_shape), math.prod(self.in_shape)):
            raise ValueError(
                f"matrix must have shape ({math.prod(self.out_shape)}, {math.prod(self.in_shape)}) for "
                f"in_shape {self.in_shape} and out_shape {self.out_shape}, got {tuple(matrix.shape)}"
            )
        self.register_buffer("matrix", matrix)

    def _matrix_for(self, value: torch.Tensor) -> torch.Tensor:
        """The matrix in the precision of ``value`` (complex if either is)."""
        dtype = value.dtype.to_complex() if self.matrix.is_complex() and not value.is_complex() else value.dtype
        return self.matrix.to(dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        matrix = self._matrix_for(x)
        flat = x.reshape(x.shape[0], -1).to(matrix.dtype)
        return (flat @ matrix.T).reshape(x.shape[0], *self.out_shape)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        matrix = self._matrix_for(y)
        flat = y.reshape(y.shape[0], -1).to(matrix.dtype)
        return (flat @ matrix.conj()).reshape(y.shape[0], *self.in_shape)


def _as_shape(shape: Sequence[int], name: str) -> tuple[int, ...]:
    expected = f"{name} must be a non-empty sequence of positive ints, got {shape!r}"
    try:
        entries = tuple(shape)
    except TypeError:
        raise TypeError(expected) from None
    if not entries:
        raise ValueError(expected)
    for i, n in enumerate(entries):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{expected} ({name}[{i}] is {n!r})")
        if n < 1:
            raise ValueError(f"{expected} ({name}[{i}] is {n})")
    return tuple(int(n) for n in entries)


class _Adjoint(LinearOperator):
    def __init__(self, op: LinearOperator) -> None:
        super().__init__(
            op.out_shape, op.in_shape, complex_domain=op.complex_range, complex_range=op.complex_domain
        )
        self.op = op

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op._adjoint(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.op._forward(y)

    @property
    def T(self) -> LinearOperator:  # noqa: N802
        return self.op

    def describe(self) -> str:
        return f"{self.op.describe()}.T"


class _Composition(LinearOperator):
    def __init__(self, outer: LinearOperator, inner: LinearOperator) -> None:
        if inner.out_shape != outer.in_shape:
            raise ValueError(
                f"cannot compose {outer.describe()} @ {inner.describe()}: the inner output shape "
                f"{inner.out_shape} must equal the outer input shape {outer.in_shape}"
            )
        super().__init__(
            inner.in_shape,
            outer.out_shape,
            complex_domain=inner.complex_domain,
            complex_range=outer.complex_range,
        )
        self.outer = outer
        self.inner = inner

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer._forward(self.inner._forward(x))

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner._adjoint(self.outer._adjoint(y))

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner._adjoint(self.outer._normal(self.inner._forward(x)))

    def _measured(self, y: torch.Tensor) -> torch.Tensor:
        return self.outer._measured(y)

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        # (Cᴴ N C + δI)⁻¹ = Cᴴ (N + δI)⁻¹ C when C is a bijective isometry.
        if not self.inner.unitary:
            return None
        solved = self.outer._solve_normal(self.inner._forward(rhs), damping)
        return None if solved is None else self.inner._adjoint(solved)

    def describe(self) -> str:
        return f"({self.outer.describe()} @ {self.inner.describe()})"


class _Scaled(LinearOperator):
    def __init__(self, op: LinearOperator, scalar: complex) -> None:
        super().__init__(
            op.in_shape,
            op.out_shape,
            complex_domain=op.complex_domain,
            complex_range=op.complex_range or isinstance(scalar, complex),
        )
        self.op = op
        self.scalar = scalar

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scalar * self.op._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        scalar = self.scalar.conjugate() if isinstance(self.scalar, complex) else self.scalar
        result = scalar * self.op._adjoint(y)
        # A real-domain operator's adjoint under the real inner product Re⟨·,·⟩.
        return result.real if result.is_complex() and not self.complex_domain else result

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        return abs(self.scalar) ** 2 * self.op._normal(x)

    def _pinv(self, y: torch.Tensor) -> torch.Tensor:
        if self.scalar == 0:
            return torch.zeros((y.shape[0], *self.in_shape), dtype=y.dtype, device=y.device)
        return self.op._pinv(y) / self.scalar

    def _measured(self, y: torch.Tensor) -> torch.Tensor:
        return self.op._measured(y) if self.scalar != 0 else torch.zeros_like(y)

    def _solve_normal(self, rhs: torch.Tensor, damping: float) -> torch.Tensor | None:
        # (|c|²N + δI)⁺ = (N + δ/|c|²)⁺ / |c|²
        gain = abs(self.scalar) ** 2
        if gain == 0:
            return None
        solved = self.op._solve_normal(rhs, damping / gain)
        return None if solved is None else solved / gain

    def describe(self) -> str:
        return f"{self.scalar} * {self.op.describe()}"


class _Sum(LinearOperator):
    def __init__(self, first: LinearOperator, second: LinearOperator) -> None:
        if first.in_shape != second.in_shape or first.out_shape != second.out_shape:
            raise ValueError(
                f"cannot add {first.describe()} and {second.describe()}: "
                "both must have the same in_shape and out_shape"
            )
        super().__init__(
            first.in_shape,
            first.out_shape,
            complex_domain=first.complex_domain or second.complex_domain,
            complex_range=first.complex_range or second.complex_range,
        )
        self.first = first
        self.second = second

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.first._forward(x) + self.second._forward(x)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.first._adjoint(y) + self.second._adjoint(y)

    def describe(self) -> str:
        return f"({self.first.describe()} + {self.second.describe()})"


class _Stacked(LinearOperator):
    """``x -> concat(A₁x.flatten(), A₂x.flatten(), ...)``, shaped ``(B, Σ numel)``."""

    def __init__(self, operators: Sequence[LinearOperator]) -> None:
        operators = list(operators)
        if not operators or not all(isinstance(op, LinearOperator) for op in operators):
            raise TypeError("stack() needs one or more LinearOperator objects")
        in_shape = operators[0].in_shape
        for op in operators[1:]:
            if op.in_shape != in_shape:
                raise ValueError(
                    f"stack() needs operators with one in_shape: {operators[0].describe()} and "
                    f"{op.describe()} differ"
                )
        complex_ranges = {op.complex_range for op in operators}
        if len(complex_ranges) > 1:
            raise ValueError("stack() cannot mix operators with real and complex measurements")
        self.sizes = [math.prod(op.out_shape) for op in operators]
        super().__init__(
            in_shape,
            (sum(self.sizes),),
            complex_domain=any(op.complex_domain for op in operators),
            complex_range=complex_ranges.pop(),
        )
        self.operators = nn.ModuleList(operators)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([op._forward(x).reshape(x.shape[0], -1) for op in self.operators], dim=1)

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:
        parts = torch.split(y, self.sizes, dim=1)
        result = None
        for op, part in zip(self.operators, parts):
            term = op._adjoint(part.reshape(y.shape[0], *op.out_shape))
            result = term if result is None else result + term
        return result

    def _normal(self, x: torch.Tensor) -> torch.Tensor:
        result = None
        for op in self.operators:
            term = op._normal(x)
            result = term if result is None else result + term
        return result

    def describe(self) -> str:
        return "stack(" + ", ".join(op.describe() for op in self.operators) + ")"


def stack(*operators: LinearOperator) -> LinearOperator:
    """Stack operators that see the same image into one.

    The measurement of the stack is the concatenation of every operator's
    flattened measurement, shaped ``(B, sum(prod(op.out_shape)))``.
    """
    return _Stacked(operators)


def _domain_dtype(op: LinearOperator, real_dtype: torch.dtype) -> torch.dtype:
    return real_dtype.to_complex() if op.complex_domain else real_dtype


def _range_dtype(op: LinearOperator, real_dtype: torch.dtype) -> torch.dtype:
    return real_dtype.to_complex() if op.complex_range else real_dtype


def _random(shape: Sequence[int], dtype: torch.dtype, device, generator: torch.Generator):
    # Draw on the CPU so that a seed gives the same vectors on every device.
    return torch.randn(tuple(shape), dtype=dtype, generator=generator).to(device)


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """⟨a, b⟩ = Σ conj(a)·b over all entries."""
    dtype = torch.promote_types(a.dtype, b.dtype)
    return torch.vdot(a.reshape(-1).to(dtype), b.reshape(-1).to(dtype))


def dot_test(
    operator: LinearOperator,
    dtype: torch.dtype = torch.float64,
    batch: int = 2,
    seed: int = 0,
) -> float:
    """Relative error of the adjoint identity ``⟨Ax, y⟩ = ⟨x, Aᴴy⟩``.

    Parameters
    ----------
    operator : LinearOperator
        The operator to test.
    dtype : torch.dtype
        Real floating dtype of the random test vectors (complex operators get
        the matching complex dtype).
    batch : int
        Batch size of the test vectors.
    seed : int
        Seed of the test vectors.

    Returns
    -------
    float
        ``|⟨Ax, y⟩ − ⟨x, Aᴴy⟩| / max(|⟨Ax, y⟩|, |⟨x, Aᴴy⟩|)``; about machine
        precision for an exact adjoint.
    """
    if not isinstance(operator, LinearOperator):
        raise TypeError(f"operator must be a LinearOperator, got {type(operator).__name__}")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    batch = check_int(batch, "batch")
    generator = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
    device = operator.device
    x = _random((batch, *operator.in_shape), _domain_dtype(operator, dtype), device, generator)
    y = _random((batch, *operator.out_shape), _range_dtype(operator, dtype), device, generator)
    lhs = _inner(operator.forward(x), y)
    rhs = _inner(x, operator.adjoint(y))
    if not operator.complex_domain:
        # real images: the adjoint is taken under the real inner product Re⟨·,·⟩
        lhs, rhs = lhs.real, rhs.real
    scale = max(abs(lhs.item()), abs(rhs.item()), torch.finfo(dtype).tiny)
    return abs((lhs - rhs).item()) / scale


def _power_iteration(op: LinearOperator, iterations: int, tol: float, seed: int) -> float:
    generator = torch.Generator().manual_seed(seed)
    start = _random((1, *op.in_shape), _domain_dtype(op, torch.float64), op.device, generator)
    return power_iteration(op._normal, start, iterations, tol)


def power_iteration(
    normal: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    iterations: int,
    tol: float,
    vector_norm: Callable[[torch.Tensor], float] = lambda v: torch.linalg.vector_norm(v).item(),
) -> float:
    """``sqrt`` of the largest eigenvalue of the self-adjoint ``normal`` (``AᴴA``), by power iteration from ``start``.

    Stops after ``iterations`` or once the relative change of the estimate is
    below ``tol``.  ``vector_norm`` measures an iterate (a volume split over
    processes passes the norm summed over the ranks, so that every rank
    takes the same steps).
    """
    x = start / vector_norm(start)
    estimate = 0.0
    with torch.no_grad():
        for _ in range(iterations):
            z = normal(x)
            new_estimate = vector_norm(z)
            if new_estimate == 0.0:
                return 0.0
            x = z / new_estimate
            if abs(new_estimate - estimate) <= tol * new_estimate:
                estimate = new_estimate
                break
            estimate = new_estimate
    return math.sqrt(estimate)


def conjugate_gradient_pinv(
    op: LinearOperator,
    y: torch.Tensor,
    iterations: int = 100,
    tol: float = 1e-6,
    damping: float = 0.0,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Solve ``(AᴴA + δI) x = Aᴴy`` by conjugate gradients (:func:`~.cg.cg`), started at zero.

    With ``δ = 0`` the iterates stay in the range of ``Aᴴ`` and converge to
    the minimum-norm least-squares solution ``A⁺y``; with ``δ > 0`` to the
    Tikhonov-regularised solution.  Each batch item is solved independently
    and stops once its residual norm falls below ``tol`` times its start.

    Parameters
    ----------
    op : LinearOperator
    y : torch.Tensor
        Measurements ``(B, *op.out_shape)``, already validated.
    iterations : int
        Maximum number of iterations (one ``AᴴA`` each).
    tol : float
        Relative residual at which an item stops.
    damping : float
        ``δ >= 0``.
    reduce : callable, optional
        Sums the inner products over processes (:func:`~.cg.cg`'s ``reduce``)
        for an operator whose image is split over them.
    """
    if damping:
        return cg(lambda v: op._normal(v) + damping * v, op._adjoint(y), iterations=iterations, tol=tol, reduce=reduce)
    return cg(op._normal, op._adjoint(y), iterations=iterations, tol=tol, reduce=reduce)
