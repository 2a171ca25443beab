"""Does generative augmentation help a morphology classifier?  Completeness and purity on real images.

The evaluation of Chen et al., "Can AI Dream of Unseen Galaxies? Conditional
Diffusion Model for Galaxy Morphology Augmentation" (ApJS 282:25, 2026,
arXiv:2506.16233): a small CNN (:class:`MorphologyClassifier`) is trained once
on the real training images and once on the real plus the generated images,
with the same seed, and both are scored on held-out *real* images by the
per-class completeness (recall, the fraction of a class's galaxies found) and
purity (precision, the fraction of the galaxies put in a class that belong
there) of :func:`completeness_purity`.  :func:`evaluate_augmentation` repeats
this over seeds; :func:`conditional_consistency` asks how often a classifier
trained on real data recovers the class a generator was asked for.

Training budget
    :func:`evaluate_augmentation` gives both runs of a seed the same number of
    optimiser steps, ``epochs * ceil((N_real + N_synthetic) / batch_size)``:
    ``epochs`` passes over the augmented set, more passes over the smaller
    real set.  Equal epochs would give the augmented run more steps, so part
    of a gain could be longer training; equal steps removes that confound and
    cuts neither run short.  (The paper trains both to convergence.)

Images are ``(N, C, H, W)`` floating tensors in any flux unit, labels ``(N,)``
integers in ``[0, num_classes)``.  All randomness comes from ``seed``; on the
CPU the same seed gives the same network bit for bit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from invsolve._checks import check_finite, check_int, check_nonnegative, check_positive, check_tensor

__all__ = ["MorphologyClassifier", "train_classifier", "prior_shift_weights", "completeness_purity",
           "evaluate_augmentation", "conditional_consistency"]

MIN_SIZE = 16  #: smallest image side accepted (three 2x poolings leave 2x2 pixels)


class MorphologyClassifier(nn.Module):
    """A small CNN that maps ``(B, C, H, W)`` galaxy images to ``num_classes`` logits.

    Each block is a 3x3 convolution, GroupNorm (no batch statistics, so a batch
    of one trains and predicts like any other), SiLU and a 2x max-pool; a last
    3x3 convolution block without pooling, a global average pool and a linear
    head follow.  Every image is standardised first (its mean over ``C, H, W``
    subtracted, divided by its standard deviation plus ``eps``), so the flux
    scale and offset do not matter.

    Parameters
    ----------
    num_classes : int
        Number of classes, >= 2.
    in_channels : int
        Image channels ``C`` (bands), >= 1.
    channels : sequence of int
        Feature channels of the pooled blocks; images need ``H, W >=
        max(16, 2 ** len(channels))``.
    eps : float
        Added to each image's standard deviation (in the image's units).
    """

    def __init__(
        self, num_classes: int, in_channels: int = 1, channels: Sequence[int] = (16, 32, 64), eps: float = 1e-6
    ):
        super().__init__()
        self.num_classes = check_int(num_classes, "num_classes", 2)
        self.in_channels = check_int(in_channels, "in_channels", 1)
        widths = [check_int(c, f"channels[{i}]", 1) for i, c in enumerate(channels)]
        if not widths:
            raise ValueError(f"channels must hold at least one width, got {channels!r}")
        self.eps = check_positive(eps, "eps")
        self.min_size = max(MIN_SIZE, 2 ** len(widths))
        layers: list[nn.Module] = []
        for c_in, c_out in zip([self.in_channels, *widths], widths):
            layers += [*_conv_block(c_in, c_out), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers, *_conv_block(widths[-1], widths[-1]))
        self.head = nn.Linear(widths[-1], self.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``(B, C, H, W)``."""
        _check_image_shape(images, "images", self.in_channels, self.min_size)
        images = images.to(self.head.weight.dtype)
        std, mean = torch.std_mean(images, dim=(1, 2, 3), correction=0, keepdim=True)
        return self.head(self.features((images - mean) / (std + self.eps)).mean(dim=(-2, -1)))

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Class probabilities ``(N, num_classes)`` (softmax of the logits), on the images' device.

        Runs in eval mode, ``batch_size`` images at a time on the network's
        device; the network's train/eval mode is restored afterwards.
        """
        _check_images(images, "images", self.in_channels, self.min_size)
        batch_size = check_int(batch_size, "batch_size", 1)
        device, was_training = next(self.parameters()).device, self.training
        self.eval()
        try:
            parts = [self(images[i : i + batch_size].to(device)) for i in range(0, len(images), batch_size)]
        finally:
            self.train(was_training)
        return torch.softmax(torch.cat(parts), dim=1).to(images.device)

    def predict(
        self, images: torch.Tensor, batch_size: int = 256, class_weights: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Most probable class ``(N,)`` (int64, on the images' device) of images ``(N, C, H, W)``.

        ``class_weights``, a ``(num_classes,)`` tensor of finite weights
        ``>= 0``, multiplies each class's probability before the most
        probable is taken: with :func:`prior_shift_weights` it corrects a
        classifier trained at other class frequencies than the images'.
        """
        probabilities = self.probabilities(images, batch_size)
        if class_weights is None:
            return probabilities.argmax(dim=1)
        check_tensor(class_weights, "class_weights", allow_complex=False)
        if tuple(class_weights.shape) != (self.num_classes,):
            raise ValueError(f"class_weights must have shape ({self.num_classes},), one weight per class, got "
                             f"{tuple(class_weights.shape)}")
        check_finite(class_weights, "class_weights")
        if bool((class_weights < 0).any()):
            raise ValueError(f"class_weights must be >= 0, got {class_weights.tolist()}")
        return (probabilities * class_weights.to(probabilities)).argmax(dim=1)


def _conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(math.gcd(8, c_out), c_out), nn.SiLU()]


def train_classifier(
    images: torch.Tensor, labels: torch.Tensor | Sequence[int], num_classes: int, *,
    epochs: int = 10, batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 1e-4, seed: int = 0,
    augment: bool = True, balance: bool = False, steps: int | None = None,
    device: torch.device | str | None = None, progress: bool = False,
) -> MorphologyClassifier:
    """Train a :class:`MorphologyClassifier` with AdamW on the cross-entropy.

    Parameters
    ----------
    images, labels : torch.Tensor (labels: or sequence of int)
        ``(N, C, H, W)`` finite floating images (``H, W >= 16``) and their ``(N,)`` classes.
    num_classes : int
        Number of classes, >= 2; labels lie in ``[0, num_classes)``.
    epochs : int
        Passes over the data (``ceil(N / batch_size)`` steps each; the last
        batch of a pass may be smaller).  Ignored when ``steps`` is given.
    batch_size, lr, weight_decay
        Images per optimiser step; AdamW's learning rate and decoupled weight decay.
    seed : int
        Seeds the initial weights, the batch order, the flips and rotations
        and the balanced draws; the global RNG is left untouched.
    augment : bool
        Flip each training image left-right at random and rotate it by a
        random multiple of 90 degrees (180 only, for ``H != W``): a galaxy's
        morphology does not change under these.
    balance : bool
        Draw each pass's ``N`` images with replacement, with probability
        inversely proportional to their class's count (a seeded
        ``WeightedRandomSampler``); off by default, as the paper trains on
        the data as given.
    steps : int or None
        Number of optimiser steps, overriding ``epochs`` (passes continue
        until the budget is spent; the last may be partial).
    device, progress
        Where to train (``None``: the images' device); show a tqdm bar over the steps.

    Returns
    -------
    MorphologyClassifier
        The trained network, in eval mode, on ``device``.
    """
    images = _check_images(images, "images")
    num_classes = check_int(num_classes, "num_classes", 2)
    labels = _check_labels(labels, "labels", images.shape[0], num_classes)
    epochs, batch_size = check_int(epochs, "epochs", 1), check_int(batch_size, "batch_size", 1)
    lr, weight_decay = check_positive(lr, "lr"), check_nonnegative(weight_decay, "weight_decay")
    seed, steps = check_int(seed, "seed", 0), check_int(steps, "steps", 1, optional=True)
    device = images.device if device is None else torch.device(device)
    n = images.shape[0]
    total = steps if steps is not None else epochs * math.ceil(n / batch_size)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MorphologyClassifier(num_classes, in_channels=images.shape[1]).to(device)
    generator = torch.Generator().manual_seed(seed)
    data, targets = images.to(device, torch.float32), labels.to(device)
    sampler = None
    if balance:
        weights = (1.0 / torch.bincount(labels, minlength=num_classes).double())[labels]
        sampler = torch.utils.data.WeightedRandomSampler(weights, n, replacement=True, generator=generator)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    done = 0
    with tqdm(total=total, desc="classifier", disable=not progress, leave=False) as bar:
        while done < total:
            order = torch.tensor(list(sampler)) if sampler is not None else torch.randperm(n, generator=generator)
            for batch in order.split(batch_size):
                if done == total:
                    break
                batch = batch.to(device)
                x = _dihedral(data[batch], generator) if augment else data[batch]
                loss = F.cross_entropy(model(x), targets[batch])
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                done += 1
                bar.update(1)
                if progress:
                    bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


def _dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2 and rotate it by 90 k degrees (k = 0, 2 if not square)."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    turns = torch.randint(0, 4, (x.shape[0],), generator=generator)
    turns = turns if x.shape[-1] == x.shape[-2] else 2 * (turns % 2)
    x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    out = x.clone()
    for k in (1, 2, 3):
        chosen = (turns == k).nonzero().flatten().to(x.device)
        if chosen.numel():
            out[chosen] = torch.rot90(x[chosen], k, dims=(-2, -1))
    return out


def prior_shift_weights(trained_counts: Sequence[int], target_counts: Sequence[int]) -> torch.Tensor:
    """Class weights that move a classifier from its training class frequencies to others.

    A classifier trained at class frequencies ``π_train`` estimates
    ``p_train(c | x)``; at frequencies ``π`` the posterior is
    ``p(c | x) ∝ p_train(c | x) · π(c) / π_train(c)`` (Saerens, Latinne &
    Decaestecker, "Adjusting the Outputs of a Classifier to New a Priori
    Probabilities", Neural Computation 14(1):21, 2002).  Synthetic images of a
    rare class raise its training frequency, so a classifier trained on them
    puts too many galaxies in it; weighting its probabilities by these weights
    (:meth:`MorphologyClassifier.predict`) returns it to the real frequencies
    and keeps what the synthetic images taught about the class's appearance.

    Parameters
    ----------
    trained_counts, target_counts : sequence of int
        ``(num_classes,)`` image counts per class: of the classifier's training
        set, and of the population it is applied to (e.g. the real training
        images); counts ``>= 0`` with a positive total, and every class of the
        target counted in the training set.

    Returns
    -------
    torch.Tensor
        float64 ``(num_classes,)``, ``π(c) / π_train(c)``; 0 for a class the
        target leaves out.
    """
    trained = torch.as_tensor(trained_counts, dtype=torch.float64)
    target = torch.as_tensor(target_counts, dtype=torch.float64)
    for name, counts in (("trained_counts", trained), ("target_counts", target)):
        if counts.ndim != 1 or len(counts) < 2 or bool((counts < 0).any()) or not counts.sum() > 0:
            raise ValueError(f"{name} must be one count >= 0 per class (at least 2) with a positive total, got "
                             f"{counts.tolist()}")
    if trained.shape != target.shape:
        raise ValueError(f"trained_counts and target_counts must count the same classes, got {len(trained)} and "
                         f"{len(target)} counts")
    missing = ((trained == 0) & (target > 0)).nonzero().flatten().tolist()
    if missing:
        raise ValueError(f"class(es) {missing} have target counts but none in training; a classifier cannot be "
                         "moved to a class it never saw")
    ratio = (target / target.sum()) / (trained / trained.sum())
    return torch.where(target > 0, ratio, torch.zeros_like(ratio))


def completeness_purity(
    predicted: torch.Tensor | Sequence[int], truth: torch.Tensor | Sequence[int], num_classes: int
) -> dict:
    """Per-class completeness (recall) and purity (precision) of a classification.

    Parameters
    ----------
    predicted, truth : torch.Tensor or sequence of int
        ``(N,)`` predicted and true classes in ``[0, num_classes)``, ``N >= 1``.
    num_classes : int
        Number of classes, >= 2.

    Returns
    -------
    dict
        JSON-serialisable, lists indexed by class:
        ``completeness`` (correct / true count; ``None`` for a class absent
        from ``truth``), ``purity`` (correct / predicted count; ``None`` for a
        class never predicted), ``support`` (true counts), ``predicted_count``,
        ``confusion`` (``num_classes x num_classes`` ints, row = truth,
        column = prediction) and ``accuracy`` (a float).
    """
    num_classes = check_int(num_classes, "num_classes", 2)
    predicted = _check_labels(predicted, "predicted", None, num_classes)
    truth = _check_labels(truth, "truth", predicted.shape[0], num_classes, per="entry of predicted")
    confusion = torch.bincount(truth * num_classes + predicted, minlength=num_classes**2).view(num_classes, -1)
    support, predicted_count = confusion.sum(dim=1).tolist(), confusion.sum(dim=0).tolist()
    correct = confusion.diagonal().tolist()
    return {
        "completeness": [c / s if s else None for c, s in zip(correct, support)],
        "purity": [c / p if p else None for c, p in zip(correct, predicted_count)],
        "support": support, "predicted_count": predicted_count, "confusion": confusion.tolist(),
        "accuracy": sum(correct) / truth.shape[0],
    }


def evaluate_augmentation(
    train_images: torch.Tensor, train_labels: torch.Tensor | Sequence[int],
    test_images: torch.Tensor, test_labels: torch.Tensor | Sequence[int],
    synthetic_images: torch.Tensor, synthetic_labels: torch.Tensor | Sequence[int], *,
    class_names: Sequence[str], seeds: Sequence[int] = (0, 1, 2), epochs: int = 10, batch_size: int = 64,
    progress: bool = False, device: torch.device | str | None = None,
) -> dict:
    """Completeness and purity on real test images of classifiers trained without and with synthetic images.

    For each seed, one classifier is trained on the real images and one on
    the real plus the synthetic images (:func:`train_classifier` with
    ``augment=True``, ``balance=False``), both with that seed and the same
    number of optimiser steps, ``epochs * ceil((N_train + N_synthetic) /
    batch_size)`` (see the module's "Training budget"), and both are scored
    by :func:`completeness_purity` on the test set.  The augmented classifier
    is scored twice: as trained (``"augmented"``), and with its probabilities
    moved from the class frequencies of real + synthetic images back to those
    of the real training images (``"augmented_prior_corrected"``,
    :func:`prior_shift_weights`), which the test images are assumed to share:
    the synthetic images then inform what a class looks like, not how often
    it occurs.

    Parameters
    ----------
    train_images, test_images, synthetic_images : torch.Tensor
        ``(N, C, H, W)`` finite floating images of one ``(C, H, W)``; each set non-empty.
    train_labels, test_labels, synthetic_labels : torch.Tensor or sequence of int
        ``(N,)`` classes of the matching images, in ``[0, len(class_names))``.
    class_names : sequence of str
        One distinct name per class (>= 2).
    seeds : sequence of int
        Distinct seeds >= 0, one pair of runs each.
    epochs, batch_size : int
        Passes over the augmented set, and images per step.
    progress, device
        tqdm bars (runs, and steps within a run); where to train (``None``: the training images' device).

    Returns
    -------
    dict
        JSON-serialisable: ``class_names``, ``seeds``, ``epochs``,
        ``batch_size``, ``steps`` (per run); ``counts`` with the class counts
        ``train``, ``synthetic``, ``test``; ``prior_shift_weights`` (per
        class); ``per_class``, keyed by class name, each with ``real``,
        ``augmented`` and ``augmented_prior_corrected`` holding
        ``completeness_mean``, ``completeness_std``, ``purity_mean``,
        ``purity_std`` over seeds and ``purity_pooled`` (the seeds' correct
        predictions of the class over all their predictions of it: unlike the
        mean, it does not drop the seeds that never predict the class nor
        weigh a seed that predicts it five times like one that predicts it a
        hundred times), plus ``completeness_gain`` (augmented −
        real mean) and ``relative_completeness_gain`` ((augmented − real) /
        real), each keyed by the two augmented scorings; ``accuracy`` with
        ``real``, ``augmented`` and ``augmented_prior_corrected``
        ``mean``/``std``; ``per_seed``, one ``{"seed", "real", "augmented",
        "augmented_prior_corrected"}`` per seed with the full
        :func:`completeness_purity` dicts.  Means and (sample, ddof=1)
        standard deviations are over the seeds where the score is defined:
        ``None`` where no seed (for a std, fewer than two) defines it; a
        relative gain is ``None`` where the real-only mean is 0 or ``None``.
    """
    names = _check_class_names(class_names)
    num_classes = len(names)
    train_images = _check_images(train_images, "train_images")
    shape = tuple(train_images.shape[1:])
    test_images = _check_images(test_images, "test_images", shape=shape)
    synthetic_images = _check_images(synthetic_images, "synthetic_images", shape=shape)
    sets = {}
    for name, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels),
                                 ("synthetic", synthetic_images, synthetic_labels)):
        labels = _check_labels(labels, f"{name}_labels", images.shape[0], None)
        if int(labels.max()) >= num_classes:
            raise ValueError(f"class_names must name every class: {name}_labels reach {int(labels.max())}, so at "
                             f"least {int(labels.max()) + 1} names are needed, got {num_classes} ({names!r})")
        sets[name] = (images, labels)
    seed_list = _check_seeds(seeds)
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    device = train_images.device if device is None else torch.device(device)

    (train_x, train_y), (test_x, test_y), (syn_x, syn_y) = sets["train"], sets["test"], sets["synthetic"]
    runs = {"real": (train_x, train_y),
            "augmented": (torch.cat([train_x.to(device, torch.float32), syn_x.to(device, torch.float32)]),
                          torch.cat([train_y, syn_y]))}
    steps = epochs * math.ceil(len(runs["augmented"][1]) / batch_size)
    counts = {name: torch.bincount(sets[name][1], minlength=num_classes).tolist()
              for name in ("train", "synthetic", "test")}
    weights = prior_shift_weights(torch.bincount(runs["augmented"][1], minlength=num_classes).tolist(),
                                  counts["train"])
    test_x = test_x.to(device)
    per_seed = []
    with tqdm(total=2 * len(seed_list), desc="augmentation runs", disable=not progress) as bar:
        for seed in seed_list:
            models = {}
            for run, (x, y) in runs.items():
                models[run] = train_classifier(x, y, num_classes, seed=seed, steps=steps, batch_size=batch_size,
                                               augment=True, balance=False, device=device, progress=progress)
                bar.update(1)
            per_seed.append({
                "seed": seed,
                "real": completeness_purity(models["real"].predict(test_x), test_y, num_classes),
                "augmented": completeness_purity(models["augmented"].predict(test_x), test_y, num_classes),
                "augmented_prior_corrected": completeness_purity(
                    models["augmented"].predict(test_x, class_weights=weights), test_y, num_classes),
            })

    scorings = ("real", "augmented", "augmented_prior_corrected")
    per_class = {}
    for c, name in enumerate(names):
        entry = {run: {f"{key}_{stat}": value for key in ("completeness", "purity")
                       for stat, value in zip(("mean", "std"), _mean_std([s[run][key][c] for s in per_seed]))}
                 for run in scorings}
        for run in scorings:
            predicted = sum(s[run]["predicted_count"][c] for s in per_seed)
            correct = sum(s[run]["confusion"][c][c] for s in per_seed)
            entry[run]["purity_pooled"] = correct / predicted if predicted else None
        real = entry["real"]["completeness_mean"]
        augmented = {run: entry[run]["completeness_mean"] for run in scorings[1:]}
        entry["completeness_gain"] = {run: None if real is None or aug is None else aug - real
                                      for run, aug in augmented.items()}
        entry["relative_completeness_gain"] = {run: None if not real or aug is None else (aug - real) / real
                                               for run, aug in augmented.items()}
        per_class[name] = entry
    return {
        "class_names": names, "seeds": seed_list, "epochs": epochs, "batch_size": batch_size, "steps": steps,
        "counts": counts, "prior_shift_weights": weights.tolist(),
        "per_class": per_class,
        "accuracy": {run: dict(zip(("mean", "std"), _mean_std([s[run]["accuracy"] for s in per_seed])))
                     for run in scorings},
        "per_seed": per_seed,
    }


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    defined = [v for v in values if v is not None]
    mean = statistics.fmean(defined) if defined else None
    return mean, (statistics.stdev(defined) if len(defined) > 1 else None)


def conditional_consistency(
    classifier: MorphologyClassifier, images: torch.Tensor, requested_labels: torch.Tensor | Sequence[int],
    num_classes: int, *, batch_size: int = 256,
) -> dict:
    """How often a classifier trained on real images recovers the class a generator was asked for.

    Parameters
    ----------
    classifier : MorphologyClassifier
        Trained on real images.
    images, requested_labels : torch.Tensor (labels: or sequence of int)
        ``(N, C, H, W)`` generated images and ``(N,)`` the class each was generated for.
    num_classes, batch_size : int
        Number of classes (must equal the classifier's); images per forward pass.

    Returns
    -------
    dict
        JSON-serialisable: ``rate`` (fraction of images classified as
        requested), ``per_class`` (that fraction among the images requested
        as each class; ``None`` for a class never requested),
        ``requested_count``, ``predicted_count`` and ``confusion`` (row =
        requested class, column = predicted class).
    """
    if not isinstance(classifier, MorphologyClassifier):
        raise TypeError(f"classifier must be a MorphologyClassifier, got {type(classifier).__name__}")
    num_classes = check_int(num_classes, "num_classes", 2)
    if num_classes != classifier.num_classes:
        raise ValueError(f"num_classes must equal the classifier's ({classifier.num_classes}), got {num_classes}")
    images = _check_images(images, "images", classifier.in_channels, classifier.min_size)
    requested = _check_labels(requested_labels, "requested_labels", images.shape[0], num_classes)
    scores = completeness_purity(classifier.predict(images, batch_size), requested, num_classes)
    return {"rate": scores["accuracy"], "per_class": scores["completeness"], "requested_count": scores["support"],
            "predicted_count": scores["predicted_count"], "confusion": scores["confusion"]}


# ----------------------------------------------------------------------------------------------- input checks


def _check_image_shape(images: torch.Tensor, name: str, channels: int | None = None, min_size: int = MIN_SIZE) -> None:
    """Metadata only: ``images`` is ``(N, C, H, W)`` with ``C = channels`` and ``H, W >= min_size``."""
    if images.dim() != 4:
        raise ValueError(f"{name} must be a 4-D tensor (N, C, H, W), got shape {tuple(images.shape)}")
    _, c, h, w = images.shape
    if channels is not None and c != channels:
        raise ValueError(f"{name} must have {channels} channel(s) (N, {channels}, H, W), got {tuple(images.shape)}")
    if h < min_size or w < min_size:
        raise ValueError(f"{name} must be at least {min_size}x{min_size} pixels (H, W >= {min_size}), got {h}x{w}")


def _check_images(
    images: object, name: str, channels: int | None = None, min_size: int = MIN_SIZE, *, shape: tuple | None = None
) -> torch.Tensor:
    """``images`` if it is a non-empty, finite, real floating ``(N, C, H, W)`` tensor (of ``(C, H, W) = shape``)."""
    images = check_tensor(images, name, allow_complex=False)
    _check_image_shape(images, name, channels, min_size)
    if images.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(images.shape)}")
    if shape is not None and tuple(images.shape[1:]) != shape:
        expected = ", ".join(map(str, shape))
        raise ValueError(f"{name} must be shaped (N, {expected}) like train_images, got {tuple(images.shape)}")
    check_finite(images, name)
    return images


def _check_labels(
    labels: object, name: str, n: int | None, num_classes: int | None, per: str = "image"
) -> torch.Tensor:
    """``labels`` as a CPU int64 ``(n,)`` tensor in ``[0, num_classes)`` (``None``: any n >= 1, any label >= 0)."""
    if not isinstance(labels, torch.Tensor):
        try:
            labels = torch.as_tensor(labels)
        except (TypeError, ValueError, RuntimeError):
            kind = type(labels).__name__
            raise TypeError(f"{name} must be an integer tensor or a sequence of ints, got {kind}") from None
        labels = labels.long() if labels.numel() == 0 else labels  # [] converts to float32
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {tuple(labels.shape)}")
    if n is not None and labels.shape[0] != n:
        raise ValueError(f"{name} must hold one label per {per} ({n}), got {labels.shape[0]}")
    if labels.shape[0] == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(labels.shape)}")
    labels = labels.to("cpu", torch.int64)
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or (num_classes is not None and high >= num_classes):
        bound = f"[0, {num_classes})" if num_classes is not None else ">= 0"
        raise ValueError(f"{name} must lie in {bound}, got a label {low if low < 0 else high}")
    return labels


def _check_class_names(class_names: object) -> list[str]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise TypeError(f"class_names must be a sequence of str, got {type(class_names).__name__}")
    names = list(class_names)
    if not all(isinstance(name, str) for name in names):
        raise TypeError(f"class_names must be a sequence of str, got {names!r}")
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"class_names must hold at least 2 distinct names (one per class), got {names!r}")
    return names


def _check_seeds(seeds: object) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a sequence of ints, got {type(seeds).__name__}")
    values = [check_int(seed, f"seeds[{i}]", 0) for i, seed in enumerate(seeds)]
    if not values or len(set(values)) != len(values):
        raise ValueError(f"seeds must hold at least one seed, without repeats, got {list(seeds)!r}")
    return values
