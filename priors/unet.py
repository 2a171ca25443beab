"""A learned diffusion prior: MONAI's ``DiffusionModelUNet`` as the denoiser.

The network is MONAI's ``DiffusionModelUNet`` (Pinaya et al., "Generative AI
for Medical Imaging: extending the MONAI Framework", arXiv:2307.15208, 2023),
the time-conditioned U-Net of Ho et al. (2020) with residual blocks,
group normalisation and self-attention at chosen levels, in 2D or 3D.  It
sees the noisy image in the prior's network range and the time as
:meth:`NoiseSchedule.network_time`, and predicts ε, x₀ or the velocity
``v = α·ε − σ·x₀`` (Salimans & Ho, "Progressive Distillation for Fast
Sampling of Diffusion Models", ICLR 2022).

Training objective
    :meth:`UNetPrior.training_loss` is the one place it lives: ``t ~ U[0, 1]``,
    ``x_t = α_t x₀ + σ_t ε`` and the mean squared error between the network
    output and its target (ε, x₀ or v) — the "simple" loss of Ho et al.,
    "Denoising Diffusion Probabilistic Models", NeurIPS 2020, eq. 14.

Conditioning (optional, one kind per prior; see :class:`Conditioning`)
    * ``"class"`` — integer labels through MONAI's class embedding
      (``num_class_embeds``), added to the time embedding.
    * ``"vector"`` — a real vector through a two-layer MLP to the width of
      the time embedding, added to it.  It travels MONAI's class-label path
      (the module that embeds ``class_labels`` is this MLP), so it works
      without attention layers.  MONAI's other route, cross-attention on a
      ``context`` sequence (``with_conditioning``), puts a transformer at every
      attention level and suits token sequences (text), not one global vector.
    * ``"image"`` — an image concatenated to ``x_t`` as extra input channels
      (SR3: Saharia et al., "Image Super-Resolution via Iterative
      Refinement", IEEE TPAMI 2022).

    Classifier-free guidance (Ho & Salimans, "Classifier-Free Diffusion
    Guidance", 2022): training drops the condition of some items
    (``drop_condition``) in favour of a learned *null* condition — an extra
    class label, a learned vector, or a learned constant per image channel —
    and sampling combines ``(1 + w)·f(x_t, c) − w·f(x_t, ∅)`` with
    ``w = guidance_scale``.  Without a condition the prior is the
    unconditional model ``f(x_t, ∅)``.

Mixed precision
    :meth:`UNetPrior.network_output`, the inference path every sampler uses,
    runs under ``torch.autocast`` with bfloat16 when ``inference_dtype`` is
    ``"bfloat16"`` and the input's device has native bfloat16 kernels
    (:func:`invsolve._precision.native_bfloat16`: AVX-512 CPUs, CUDA; on an
    AVX2-only CPU bfloat16 convolutions are ~40× slower than float32, so it
    runs in float32 there) and returns float32.  :meth:`UNetPrior.forward`
    and :meth:`UNetPrior.training_loss` add no autocast of their own, so a
    trainer chooses its precision by wrapping them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from invsolve._checks import check_batched_shape, check_int, check_nonnegative, check_shape, check_tensor
from invsolve._precision import native_bfloat16
from invsolve._random import randn_like

from .base import DiffusionPrior, Normalization, _per_sample
from .schedule import DiscreteVPSchedule, NoiseSchedule

__all__ = ["UNetPrior", "Conditioning", "CONDITIONING_KINDS", "INFERENCE_DTYPES"]

#: what a conditional prior can be conditioned on
CONDITIONING_KINDS = ("class", "vector", "image")
#: precisions of :meth:`UNetPrior.network_output`
INFERENCE_DTYPES = ("bfloat16", "float32")


@dataclass(frozen=True)
class Conditioning:
    """What a conditional :class:`UNetPrior` is conditioned on.

    Parameters
    ----------
    kind : {"class", "vector", "image"}
        ``"class"``: integer labels ``(B,)`` in ``[0, size)``.
        ``"vector"``: real vectors ``(B, size)``.
        ``"image"``: images ``(B, size, *spatial)`` with the prior's spatial
        shape, given to the network as they are (normalise them the same way
        in training and sampling).
    size : int
        Number of classes, vector length or image channels (``>= 1``).
    """

    kind: str
    size: int

    def __post_init__(self) -> None:
        if self.kind not in CONDITIONING_KINDS:
            raise ValueError(f"conditioning kind must be one of {CONDITIONING_KINDS}, got {self.kind!r}")
        check_int(self.size, "conditioning size")

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable description; ``Conditioning(**config)`` inverts it."""
        return asdict(self)


def _per_level(value: int | Sequence[int], levels: int, name: str) -> tuple[int, ...]:
    """One int ``>= 1`` per U-Net level from an int (repeated) or a sequence of ``levels`` ints."""
    if isinstance(value, Sequence):
        if len(value) != levels:
            raise ValueError(f"{name} must be an int or {levels} ints (one per level of channels), got {value!r}")
        return tuple(check_int(v, f"{name}[{i}]") for i, v in enumerate(value))
    return (check_int(value, name),) * levels


class UNetPrior(DiffusionPrior):
    """Diffusion prior whose denoiser is MONAI's ``DiffusionModelUNet``.

    Parameters
    ----------
    image_shape : (C, H, W) or (C, D, H, W)
        Shape of one image; 2D or 3D follows from its length.  Every spatial
        size must be divisible by ``2**(len(channels) − 1)``.
    schedule : NoiseSchedule, optional
        Diffusion schedule (default: DDPM's linear VP schedule, 1000 steps).
    prediction : {"eps", "x0", "v"}
        What the network predicts.
    normalization : Normalization, optional
        Physical units ↔ network range (identity by default).
    channels : sequence of int
        Feature channels per level; each a multiple of ``norm_num_groups``.
        The image is halved between consecutive levels.
    attention_levels : sequence of bool
        Self-attention at each level (the middle block always has it).
    num_res_blocks : int or sequence of int
        Residual blocks per level on the way down (one more on the way up).
    num_head_channels : int or sequence of int
        Channels per attention head; must divide the channels of every
        level with attention and of the last level.
    norm_num_groups : int
        Groups of every group normalisation.
    resblock_updown : bool
        Down- and upsample with residual blocks instead of convolutions.
    use_flash_attention : bool
        Use ``torch.nn.functional.scaled_dot_product_attention`` (faster at
        large images; same weights).
    conditioning : Conditioning, optional
        What the prior is conditioned on; ``None`` for an unconditional prior.
    inference_dtype : {"bfloat16", "float32"}
        Precision of :meth:`network_output` (autocast where the device has
        native bfloat16 kernels; outputs are float32).
    guidance_scale : float
        Classifier-free guidance weight ``w >= 0`` used when a condition is
        given at inference (0: the plain conditional model).

    Notes
    -----
    A new network outputs exactly zero: MONAI initialises its last
    convolution to zero.  :meth:`architecture` returns the network keyword
    arguments above as JSON-serialisable values, so that
    ``UNetPrior(image_shape, schedule, prediction, normalization,
    conditioning=..., **prior.architecture())`` rebuilds the same network.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        schedule: NoiseSchedule | None = None,
        prediction: str = "eps",
        normalization: Normalization | None = None,
        *,
        channels: Sequence[int] = (32, 64, 64),
        attention_levels: Sequence[bool] = (False, False, True),
        num_res_blocks: int | Sequence[int] = 1,
        num_head_channels: int | Sequence[int] = 32,
        norm_num_groups: int = 8,
        resblock_updown: bool = False,
        use_flash_attention: bool = False,
        conditioning: Conditioning | None = None,
        inference_dtype: str = "bfloat16",
        guidance_scale: float = 0.0,
    ) -> None:
        image_shape = check_shape(image_shape, "image_shape", ("C", "H", "W"), ("C", "D", "H", "W"))
        super().__init__(
            schedule if schedule is not None else DiscreteVPSchedule.linear(), image_shape, prediction, normalization
        )
        if conditioning is not None and not isinstance(conditioning, Conditioning):
            raise TypeError(f"conditioning must be a Conditioning or None, got {type(conditioning).__name__}")
        self._architecture = self._check_architecture(
            channels,
            attention_levels,
            num_res_blocks,
            num_head_channels,
            norm_num_groups,
            bool(resblock_updown),
            bool(use_flash_attention),
        )
        self._conditioning = conditioning
        self.inference_dtype = inference_dtype
        self.guidance_scale = guidance_scale

        from monai.networks.nets import DiffusionModelUNet  # imported here: MONAI takes ~2 s to import

        kind = conditioning.kind if conditioning is not None else None
        class_embeds = None
        if kind == "class":
            class_embeds = conditioning.size + 1  # one row per class and the null label
        elif kind == "vector":
            class_embeds = 1  # MONAI's class-embedding slot, replaced below by the MLP
        self.unet = DiffusionModelUNet(
            spatial_dims=len(image_shape) - 1,
            in_channels=image_shape[0] + (conditioning.size if kind == "image" else 0),
            out_channels=image_shape[0],
            num_class_embeds=class_embeds,
            **self._architecture,  # named as MONAI's keyword arguments
        )
        if kind == "vector":
            width = self.unet.time_embed[-1].out_features
            self.unet.class_embedding = nn.Sequential(
                nn.Linear(conditioning.size, width), nn.SiLU(), nn.Linear(width, width)
            )
        if kind in ("vector", "image"):
            self.null_condition = nn.Parameter(torch.zeros(conditioning.size))

    def _check_architecture(
        self,
        channels: Sequence[int],
        attention_levels: Sequence[bool],
        num_res_blocks: int | Sequence[int],
        num_head_channels: int | Sequence[int],
        norm_num_groups: int,
        resblock_updown: bool,
        use_flash_attention: bool,
    ) -> dict[str, Any]:
        if not isinstance(channels, Sequence) or len(channels) == 0:
            raise ValueError(f"channels must be a non-empty sequence of ints (one per level), got {channels!r}")
        channels = tuple(check_int(c, f"channels[{i}]") for i, c in enumerate(channels))
        levels = len(channels)
        if not isinstance(attention_levels, Sequence) or len(attention_levels) != levels:
            raise ValueError(
                f"attention_levels must be {levels} bools (one per level of channels), got {attention_levels!r}"
            )
        attention = tuple(bool(a) for a in attention_levels)
        res_blocks = _per_level(num_res_blocks, levels, "num_res_blocks")
        head_channels = _per_level(num_head_channels, levels, "num_head_channels")
        groups = check_int(norm_num_groups, "norm_num_groups")
        for i, width in enumerate(channels):
            if width % groups:
                raise ValueError(f"channels[{i}] = {width} must be a multiple of norm_num_groups = {groups}")
            if (attention[i] or i == levels - 1) and width % head_channels[i]:
                raise ValueError(
                    f"num_head_channels[{i}] = {head_channels[i]} must divide channels[{i}] = {width} "
                    "(level with attention, or the last level whose middle block has attention)"
                )
        factor = 2 ** (levels - 1)
        if any(n % factor for n in self.image_shape[1:]):
            raise ValueError(
                f"every spatial size of image_shape {self.image_shape} must be divisible by {factor} "
                f"for {levels} levels of channels"
            )
        return {
            "channels": list(channels),
            "attention_levels": list(attention),
            "num_res_blocks": list(res_blocks),
            "num_head_channels": list(head_channels),
            "norm_num_groups": groups,
            "resblock_updown": resblock_updown,
            "use_flash_attention": use_flash_attention,
        }

    def architecture(self) -> dict[str, Any]:
        """The network's constructor keyword arguments, JSON-serialisable (lists, ints, bools)."""
        return {key: list(value) if isinstance(value, list) else value for key, value in self._architecture.items()}

    @property
    def conditioning(self) -> Conditioning | None:
        """What the prior is conditioned on (``None``: unconditional)."""
        return self._conditioning

    @property
    def conditional(self) -> bool:
        """Whether the prior takes a ``condition`` (it has a :class:`Conditioning`)."""
        return self._conditioning is not None

    @property
    def inference_dtype(self) -> str:
        """``"bfloat16"`` or ``"float32"``: the autocast precision of :meth:`network_output`."""
        return self._inference_dtype

    @inference_dtype.setter
    def inference_dtype(self, value: str) -> None:
        if value not in INFERENCE_DTYPES:
            raise ValueError(f"inference_dtype must be one of {INFERENCE_DTYPES}, got {value!r}")
        self._inference_dtype = value

    @property
    def guidance_scale(self) -> float:
        """Classifier-free guidance weight ``w >= 0`` (Ho & Salimans 2022)."""
        return self._guidance_scale

    @guidance_scale.setter
    def guidance_scale(self, value: float) -> None:
        self._guidance_scale = check_nonnegative(value, "guidance_scale")

    def _check_condition(self, condition: torch.Tensor, batch: int) -> torch.Tensor:
        """Validate a condition for a batch of ``batch`` images; a batch of one is broadcast."""
        spec = self._conditioning
        item_shape = {"class": (), "vector": (spec.size,), "image": (spec.size, *self.image_shape[1:])}[spec.kind]
        if not isinstance(condition, torch.Tensor):
            raise TypeError(f"condition must be a torch.Tensor, got {type(condition).__name__}")
        if tuple(condition.shape[1:]) != item_shape or condition.dim() == 0 or condition.shape[0] not in (1, batch):
            expected = ", ".join(map(str, item_shape))
            raise ValueError(
                f"condition ({spec.kind}) must have shape ({batch}{', ' if expected else ''}{expected}) "
                f"or a batch of 1, got {tuple(condition.shape)}"
            )
        if spec.kind == "class":
            if condition.is_floating_point() or condition.is_complex() or condition.dtype == torch.bool:
                raise TypeError(f"class labels must be an integer tensor, got dtype {condition.dtype}")
            if bool((condition < 0).any()) or bool((condition >= spec.size).any()):
                raise ValueError(
                    f"class labels must lie in [0, {spec.size}), got values from "
                    f"{int(condition.min())} to {int(condition.max())}"
                )
        else:
            check_tensor(condition, "condition", allow_complex=False)
        return condition.expand(batch, *item_shape)

    def _condition_inputs(
        self, condition: torch.Tensor | None, drop_condition: torch.Tensor | None, x: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The network's extra input channels and class-embedding input for a batch ``x``."""
        spec = self._conditioning
        if spec is None:
            if condition is not None or drop_condition is not None:
                raise ValueError("this UNetPrior is unconditional: condition and drop_condition must be None")
            return None, None
        batch = x.shape[0]
        if drop_condition is None:
            drop = torch.zeros(batch, dtype=torch.bool, device=x.device)
        elif (
            not isinstance(drop_condition, torch.Tensor)
            or drop_condition.dtype != torch.bool
            or drop_condition.shape != (batch,)
        ):
            raise ValueError(f"drop_condition must be a boolean tensor shaped ({batch},), got {drop_condition!r}")
        else:
            drop = drop_condition.to(x.device)
        if spec.kind == "class":
            null = torch.full((batch,), spec.size, dtype=torch.long, device=x.device)
            if condition is None:
                return None, null
            labels = self._check_condition(condition, batch).to(device=x.device, dtype=torch.long)
            return None, torch.where(drop, null, labels)
        if spec.kind == "vector":
            null = self.null_condition.to(x.dtype).expand(batch, spec.size)
            if condition is None:
                return None, null
            vector = self._check_condition(condition, batch).to(device=x.device, dtype=x.dtype)
            return None, torch.where(drop[:, None], null, vector)
        spatial = self.image_shape[1:]
        null = self.null_condition.to(x.dtype).reshape(1, spec.size, *[1] * len(spatial))
        null = null.expand(batch, spec.size, *spatial)
        if condition is None:
            return null, None
        image = self._check_condition(condition, batch).to(device=x.device, dtype=x.dtype)
        return torch.where(_per_sample(drop, image.dim()), null, image), None

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor | float,
        condition: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The raw network output, in the caller's precision (no autocast here).

        Parameters
        ----------
        x_t : torch.Tensor
            Noisy images ``(B, *image_shape)`` in network range.
        t : float or torch.Tensor
            Time in ``[0, 1]``, a scalar or shaped ``(B,)``; the network sees
            ``schedule.network_time(t)``.
        condition : torch.Tensor, optional
            See :class:`Conditioning`; a batch of one is broadcast.  ``None``
            (conditional priors): the learned null condition for every item.
        drop_condition : torch.Tensor, optional
            Boolean ``(B,)``: items whose condition is replaced by the null
            condition (condition dropout for classifier-free guidance).

        Returns
        -------
        torch.Tensor
            ``(B, *image_shape)``: ε, x₀ or v as set by ``prediction``.
        """
        check_batched_shape(x_t, self.image_shape, "x_t")
        t = self._times(x_t, t)
        x = x_t.to(self.dtype)
        extra_channels, class_input = self._condition_inputs(condition, drop_condition, x)
        if extra_channels is not None:
            x = torch.cat([x, extra_channels], dim=1)
        return self.unet(x, self.schedule.network_time(t), class_labels=class_input)

    def network_output(
        self, x_t: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Inference output in ``x_t``'s dtype, with guidance and ``inference_dtype`` autocast.

        With a condition and ``guidance_scale = w > 0`` the conditional and
        unconditional outputs come from one doubled batch and are combined as
        ``(1 + w)·f(x_t, c) − w·f(x_t, ∅)`` (Ho & Salimans 2022).
        """
        t = self._times(x_t, t)
        weight = self.guidance_scale
        autocast = self.inference_dtype == "bfloat16" and native_bfloat16(x_t.device)
        with torch.autocast(x_t.device.type, dtype=torch.bfloat16, enabled=autocast):
            if condition is None or weight == 0:
                output = self(x_t, t, condition).float()
            else:
                batch = x_t.shape[0]
                condition = self._check_condition(condition, batch)
                drop = torch.arange(2 * batch, device=x_t.device) >= batch
                both = self(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([condition, condition]), drop).float()
                conditional, unconditional = both.chunk(2)
                output = (1 + weight) * conditional - weight * unconditional
        return output.to(x_t.dtype)

    def training_loss(
        self,
        x0: torch.Tensor,
        generator: torch.Generator | None = None,
        condition: torch.Tensor | None = None,
        drop_condition: torch.Tensor | None = None,
        network: Callable[..., torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Denoising loss of each item: the training objective, in one place.

        Draws ``t ~ U[0, 1]`` and ``ε ~ N(0, I)`` per item, forms
        ``x_t = α_t x₀ + σ_t ε`` and returns the mean over pixels of
        ``(output − target)²`` with target ε, x₀ or ``v = α_t ε − σ_t x₀``
        for ``prediction`` "eps", "x0" or "v" (Ho et al. 2020, eq. 14;
        Salimans & Ho 2022, sec. 4).

        Parameters
        ----------
        x0 : torch.Tensor
            Clean images ``(B, *image_shape)`` in network range (apply
            :meth:`to_network` to physical data).
        generator : torch.Generator, optional
            Source of ``t`` and ``ε`` (on its own device).
        condition, drop_condition : torch.Tensor, optional
            As in :meth:`forward`; draw ``drop_condition`` as
            ``torch.rand(B) < p`` to train for classifier-free guidance.
        network : callable, optional
            Called as ``network(x_t, t, condition, drop_condition)`` instead
            of the prior itself, e.g. the prior wrapped in
            ``DistributedDataParallel`` or ``torch.compile``.

        Returns
        -------
        torch.Tensor
            ``(B,)`` float32 losses; a trainer's objective is their mean.
        """
        check_tensor(x0, "x0", allow_complex=False)
        check_batched_shape(x0, self.image_shape, "x0")
        batch = x0.shape[0]
        device = generator.device if generator is not None else x0.device
        t = torch.rand(batch, dtype=x0.dtype, device=device, generator=generator).to(x0.device)
        noise = randn_like(x0, generator)
        alpha, sigma = (_per_sample(v, x0.dim()) for v in self.schedule.alpha_sigma(t))
        x_t = alpha * x0 + sigma * noise
        target = {"eps": noise, "x0": x0, "v": alpha * noise - sigma * x0}[self.prediction]
        output = (self if network is None else network)(x_t, t, condition, drop_condition)
        return (output.float() - target.float()).square().flatten(1).mean(dim=1)
