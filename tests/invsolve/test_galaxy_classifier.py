"""Tests of invsolve.galaxy.classifier: completeness/purity, the CNN, and the augmentation evaluation.

The images are a toy morphology world drawn with torch: a centred blob (0), a
horizontal bar (1) and a ring (2), jittered in position, size, flux scale and
offset, plus noise; 16x16 pixels, so that training takes a fraction of a second.
"""

import json
import math
import re

import pytest
import torch

from invsolve.galaxy import classifier as module
from invsolve.galaxy.classifier import (
    MorphologyClassifier,
    completeness_purity,
    conditional_consistency,
    evaluate_augmentation,
    prior_shift_weights,
    train_classifier,
)

NAMES = ["blob", "bar", "ring"]


def draw(labels, seed, size=(16, 16), noise=0.15):
    """``(N, 1, H, W)`` toy galaxies of the given classes (0 blob, 1 bar, 2 ring)."""
    labels = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(seed)
    n = labels.shape[0]

    def uniform(low, high):
        return low + (high - low) * torch.rand(n, 1, 1, generator=g)

    ys = torch.arange(size[0], dtype=torch.float32) - (size[0] - 1) / 2
    xs = torch.arange(size[1], dtype=torch.float32) - (size[1] - 1) / 2
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    x, y = xx - uniform(-1.5, 1.5), yy - uniform(-1.5, 1.5)
    r = (x**2 + y**2).sqrt()
    blob = torch.exp(-(r**2) / (2 * uniform(1.2, 2.2) ** 2))
    bar = torch.exp(-(y**2) / (2 * 0.9**2) - x**2 / (2 * uniform(4.0, 6.0) ** 2))
    ring = torch.exp(-((r - uniform(4.0, 5.0)) ** 2) / (2 * 0.9**2))
    clean = torch.stack([blob, bar, ring], 1)[torch.arange(n), labels]
    noisy = clean + noise * torch.randn(n, *size, generator=g)
    return (uniform(0.5, 3.0) * noisy + uniform(-1.0, 1.0))[:, None]


def balanced_labels(n, seed):
    return torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def trained():
    """A classifier trained on 240 real toy galaxies, and 150 held-out ones."""
    train_y, test_y = balanced_labels(240, 1), balanced_labels(150, 2)
    train_x, test_x = draw(train_y, seed=1), draw(test_y, seed=2)
    model = train_classifier(train_x, train_y, 3, epochs=5, seed=0)
    return {"model": model, "train": (train_x, train_y), "test": (test_x, test_y)}


# ------------------------------------------------------------------------------------- completeness and purity


def test_completeness_purity_on_a_hand_made_classification():
    truth = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3]
    predicted = [0, 0, 1, 1, 1, 0, 2, 2, 0, 0]
    # class 3 is never predicted (purity undefined); class 4 is neither present nor predicted
    scores = completeness_purity(torch.tensor(predicted), torch.tensor(truth), 5)
    assert scores["confusion"] == [
        [2, 1, 0, 0, 0],
        [0, 2, 0, 0, 0],
        [2, 0, 2, 0, 0],
        [1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ]
    assert scores["support"] == [3, 2, 4, 1, 0]
    assert scores["predicted_count"] == [5, 3, 2, 0, 0]
    assert scores["completeness"] == [2 / 3, 1.0, 0.5, 0.0, None]
    assert scores["purity"] == [2 / 5, 2 / 3, 1.0, None, None]
    assert scores["accuracy"] == 0.6
    assert json.loads(json.dumps(scores)) == scores
    assert completeness_purity(predicted, truth, 5) == scores  # plain lists work alike


def test_perfect_classification_scores_one():
    labels = torch.tensor([1, 0, 2, 2, 1])
    scores = completeness_purity(labels, labels, 3)
    assert scores["completeness"] == scores["purity"] == [1.0, 1.0, 1.0]
    assert scores["confusion"] == [[1, 0, 0], [0, 2, 0], [0, 0, 2]]


# ------------------------------------------------------------------------------------------------ the classifier


def test_classifier_learns_a_separable_three_class_problem(trained):
    model = trained["model"]
    test_x, test_y = trained["test"]
    predicted = model.predict(test_x)
    assert predicted.shape == (150,) and predicted.dtype == torch.int64
    accuracy = (predicted == test_y).float().mean().item()
    assert accuracy >= 0.9, accuracy
    probabilities = model.probabilities(test_x, batch_size=7)
    assert probabilities.shape == (150, 3)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(150))
    torch.testing.assert_close(probabilities, model.probabilities(test_x))  # batching changes nothing


def test_flux_scale_and_offset_do_not_matter(trained):
    model = trained["model"]
    test_x, _ = trained["test"]
    torch.testing.assert_close(
        model.probabilities(1000.0 * test_x - 7.0), model.probabilities(test_x), atol=1e-4, rtol=1e-4
    )
    assert torch.equal(model.predict(test_x.double()), model.predict(test_x))


def test_same_seed_same_network_and_global_rng_untouched(trained):
    train_x, train_y = trained["train"]
    test_x, _ = trained["test"]
    state = torch.get_rng_state()
    kwargs = dict(epochs=2, seed=3, balance=True)
    first = train_classifier(train_x[:120], train_y[:120], 3, **kwargs)
    second = train_classifier(train_x[:120], train_y[:120], 3, **kwargs)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first.predict(test_x), second.predict(test_x))
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    other_seed = train_classifier(train_x[:120], train_y[:120], 3, epochs=2, seed=4, balance=True)
    assert not torch.equal(other_seed.head.weight, first.head.weight)
    unaugmented = train_classifier(train_x[:120], train_y[:120], 3, epochs=2, seed=3, balance=True, augment=False)
    assert not torch.equal(unaugmented.head.weight, first.head.weight)


def test_balanced_sampling_draws_the_rare_class_as_often_as_the_others(monkeypatch):
    seen = []
    cross_entropy = torch.nn.functional.cross_entropy

    def recording(logits, targets, *args, **kwargs):
        seen.append(targets.clone())
        return cross_entropy(logits, targets, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", recording)
    y = torch.tensor([0] * 148 + [1] * 148 + [2] * 4)
    x = draw(y, 12)
    fractions = {}
    for balance in (False, True):
        seen.clear()
        train_classifier(x, y, 3, epochs=2, batch_size=100, balance=balance, augment=False)
        targets = torch.cat(seen)
        assert targets.shape == (600,)
        fractions[balance] = (targets == 2).float().mean().item()
    assert fractions[False] == pytest.approx(8 / 600)  # each image once per pass
    assert 0.25 <= fractions[True] <= 0.42, fractions


def test_step_budget(monkeypatch):
    steps = []
    original = torch.optim.AdamW.step

    def counting(self, *args, **kwargs):
        steps.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counting)
    y = balanced_labels(40, 5)
    train_classifier(draw(y, 5), y, 3, epochs=3, batch_size=16)
    assert len(steps) == 3 * math.ceil(40 / 16)
    steps.clear()
    train_classifier(draw(y, 5), y, 3, epochs=3, batch_size=16, steps=5)
    assert len(steps) == 5
    # both runs of a seed take epochs * ceil((40 + 24) / 16) = 8 steps
    steps.clear()
    syn_y = balanced_labels(24, 6)
    result = evaluate_augmentation(
        draw(y, 5), y, draw(y, 7), y, draw(syn_y, 6), syn_y, class_names=NAMES, seeds=(0,), epochs=2, batch_size=16
    )
    assert result["steps"] == 8 and len(steps) == 16


def test_non_square_images_and_the_dihedral_augmentation():
    y = balanced_labels(30, 8)
    x = draw(y, 8, size=(16, 24))
    model = train_classifier(x, y, 3, epochs=1, batch_size=8)
    assert model.predict(x).shape == (30,)
    # each augmented image is its flip and/or rotation by 90 k degrees
    square = draw(y, 9)
    out = module._dihedral(square, torch.Generator().manual_seed(0))
    for image, augmented in zip(square, out):
        candidates = [torch.rot90(v, k, dims=(-2, -1)) for v in (image, image.flip(-1)) for k in range(4)]
        assert any(torch.equal(augmented, c) for c in candidates)
    assert not torch.equal(out, square)


# ---------------------------------------------------------------------------------------- augmentation evaluation


def test_synthetic_images_of_a_rare_class_raise_its_completeness():
    train_y = torch.tensor([0] * 98 + [1] * 98 + [2] * 4)
    test_y = torch.tensor([0] * 40 + [1] * 40 + [2] * 40)
    synthetic_y = torch.full((100,), 2)
    result = evaluate_augmentation(
        draw(train_y, 3), train_y, draw(test_y, 4), test_y, draw(synthetic_y, 5), synthetic_y,
        class_names=NAMES, seeds=(0, 1), epochs=6,
    )
    rare = result["per_class"]["ring"]
    assert rare["augmented"]["completeness_mean"] > rare["real"]["completeness_mean"]
    assert rare["completeness_gain"]["augmented"] >= 0.3, rare

    assert json.loads(json.dumps(result)) == result
    assert set(result) == {"class_names", "seeds", "epochs", "batch_size", "steps", "counts", "prior_shift_weights",
                           "per_class", "accuracy", "per_seed"}
    assert result["class_names"] == NAMES and result["seeds"] == [0, 1] and result["epochs"] == 6
    assert result["steps"] == 6 * math.ceil(300 / 64)
    assert result["counts"] == {"train": [98, 98, 4], "synthetic": [0, 0, 100], "test": [40, 40, 40]}
    # the real training frequencies over those of real + synthetic: (98/200)/(98/300) twice, (4/200)/(104/300)
    assert result["prior_shift_weights"] == pytest.approx([1.5, 1.5, 0.02 / (104 / 300)])
    runs = ("real", "augmented", "augmented_prior_corrected")
    assert list(result["per_class"]) == NAMES
    for c, name in enumerate(NAMES):
        entry = result["per_class"][name]
        for run in runs:
            assert set(entry[run]) == {"completeness_mean", "completeness_std", "purity_mean", "purity_std",
                                       "purity_pooled"}
            values = [s[run]["completeness"][c] for s in result["per_seed"]]
            assert entry[run]["completeness_mean"] == pytest.approx(sum(values) / 2)
            assert entry[run]["completeness_std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))
            # pooled: both seeds' predictions of class c (column c of their confusions) in one count
            predicted = sum(row[c] for s in result["per_seed"] for row in s[run]["confusion"])
            correct = sum(s[run]["confusion"][c][c] for s in result["per_seed"])
            assert entry[run]["purity_pooled"] == (pytest.approx(correct / predicted) if predicted else None)
        real = entry["real"]["completeness_mean"]
        assert set(entry["completeness_gain"]) == set(entry["relative_completeness_gain"]) == set(runs[1:])
        for run in runs[1:]:
            augmented = entry[run]["completeness_mean"]
            assert entry["completeness_gain"][run] == pytest.approx(augmented - real)
            expected = None if real == 0 else pytest.approx((augmented - real) / real)
            assert entry["relative_completeness_gain"][run] == expected
    assert set(result["accuracy"]) == set(runs)
    assert [s["seed"] for s in result["per_seed"]] == [0, 1]
    for seed_result in result["per_seed"]:
        for run in runs:
            assert len(seed_result[run]["confusion"]) == 3 and seed_result[run]["support"] == [40, 40, 40]
        # moved back to the real frequencies, the augmented classifier puts no more images in the rare class
        corrected, raw = seed_result["augmented_prior_corrected"], seed_result["augmented"]
        assert corrected["predicted_count"][2] <= raw["predicted_count"][2]


def test_the_prior_corrected_scores_are_the_augmented_classifier_reweighted():
    train_y = torch.tensor([0] * 30 + [1] * 30 + [2] * 4)
    test_y = balanced_labels(60, 12)
    synthetic_y = torch.full((30,), 2)
    train_x, test_x, synthetic_x = draw(train_y, 13), draw(test_y, 14), draw(synthetic_y, 15)
    result = evaluate_augmentation(train_x, train_y, test_x, test_y, synthetic_x, synthetic_y, class_names=NAMES,
                                   seeds=(3,), epochs=2, batch_size=16)
    # the same seed and steps train the same network (CPU): score it by hand
    model = train_classifier(torch.cat([train_x, synthetic_x]), torch.cat([train_y, synthetic_y]), 3, seed=3,
                             steps=result["steps"], batch_size=16)
    weights = prior_shift_weights([30, 30, 34], [30, 30, 4])
    by_hand = (model.probabilities(test_x) * weights.float()).argmax(dim=1)
    assert result["per_seed"][0]["augmented_prior_corrected"] == completeness_purity(by_hand, test_y, 3)
    assert result["per_seed"][0]["augmented"] == completeness_purity(model.predict(test_x), test_y, 3)
    assert not torch.equal(by_hand, model.predict(test_x))  # the weights move some images out of the rare class


def test_prior_shift_weights():
    # target frequencies over trained ones: (0.4, 0.4, 0.2) / (0.25, 0.25, 0.5)
    assert prior_shift_weights([10, 10, 20], [10, 10, 5]).tolist() == pytest.approx([1.6, 1.6, 0.4])
    weights = prior_shift_weights([5, 5, 10], [2, 0, 2])
    assert weights.dtype == torch.float64 and weights.tolist() == pytest.approx([2.0, 0.0, 1.0])
    # equal frequencies change nothing
    assert prior_shift_weights([3, 6, 9], [1, 2, 3]).tolist() == pytest.approx([1.0, 1.0, 1.0])


@pytest.mark.parametrize("trained, target, message", [
    ([1, 2], [1, 2, 3], "^trained_counts and target_counts must count the same classes, got 2 and 3"),
    ([0, 4, 4], [1, 1, 1], r"^class\(es\) \[0\] have target counts but none in training"),
    ([0, 0], [1, 1], r"^trained_counts must be one count >= 0 per class .*got \[0.0, 0.0\]"),
    ([1, 1], [1, -1], r"^target_counts must be one count >= 0 per class .*got \[1.0, -1.0\]"),
    ([4], [4], r"^trained_counts must be one count >= 0 per class \(at least 2\)"),
])
def test_prior_shift_weights_errors(trained, target, message):
    with pytest.raises(ValueError, match=message):
        prior_shift_weights(trained, target)


def test_predict_with_class_weights(trained):
    model, (test_x, _) = trained["model"], trained["test"]
    probabilities = model.probabilities(test_x)
    assert torch.equal(model.predict(test_x, class_weights=torch.ones(3)), model.predict(test_x))
    weights = torch.tensor([1.0, 0.2, 3.0], dtype=torch.float64)
    assert torch.equal(model.predict(test_x, class_weights=weights), (probabilities * weights.float()).argmax(1))
    # a zero weight removes a class
    assert not (model.predict(test_x, class_weights=torch.tensor([1.0, 0.0, 1.0])) == 1).any()
    with pytest.raises(ValueError, match=r"^class_weights must have shape \(3,\), one weight per class, got \(2,\)"):
        model.predict(test_x, class_weights=torch.ones(2))
    with pytest.raises(ValueError, match=r"^class_weights must be >= 0, got \[1.0, -1.0, 1.0\]"):
        model.predict(test_x, class_weights=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="^class_weights must be finite"):
        model.predict(test_x, class_weights=torch.tensor([1.0, float("nan"), 1.0]))
    with pytest.raises(TypeError, match="^class_weights must be a floating-point tensor"):
        model.predict(test_x, class_weights=torch.ones(3, dtype=torch.int64))


# ------------------------------------------------------------------------------------- conditional consistency


def test_conditional_consistency(trained):
    model = trained["model"]
    requested = balanced_labels(120, 11)
    images = draw(requested, 11)
    good = conditional_consistency(model, images, requested, 3)
    assert good["rate"] >= 0.9 and min(good["per_class"]) >= 0.8, good
    assert good["requested_count"] == torch.bincount(requested, minlength=3).tolist()
    assert sum(map(sum, good["confusion"])) == 120
    assert json.loads(json.dumps(good)) == good
    wrong = conditional_consistency(model, images, (requested + 1) % 3, 3)
    assert wrong["rate"] <= 0.1, wrong
    shuffled = requested[torch.randperm(120, generator=torch.Generator().manual_seed(0))]
    assert conditional_consistency(model, images, shuffled, 3)["rate"] <= 0.6
    only_two = conditional_consistency(model, images[requested < 2], requested[requested < 2], 3)
    assert only_two["per_class"][2] is None and only_two["requested_count"][2] == 0


# ------------------------------------------------------------------------------------------------- input errors

X = draw(torch.tensor([0, 1, 2] * 4), 0)
Y = torch.tensor([0, 1, 2] * 4)


def nan_images():
    x = X.clone()
    x[3, 0, 5, 5] = float("nan")
    return x


def inf_images():
    x = X.clone()
    x[0, 0, 0, 0] = float("inf")
    return x


TRAIN_ERRORS = [
    (dict(labels=Y[:-1]), ValueError, "labels", "12"),
    (dict(labels=torch.tensor([0, 1, 3] * 4)), ValueError, "labels", "3"),
    (dict(labels=torch.tensor([0, -1, 2] * 4)), ValueError, "labels", "-1"),
    (dict(labels=Y.float()), TypeError, "labels", "float32"),
    (dict(labels=Y[:, None]), ValueError, "labels", "(12, 1)"),
    (dict(images=nan_images()), ValueError, "images", "nan"),
    (dict(images=inf_images()), ValueError, "images", "inf"),
    (dict(images=X[:, 0]), ValueError, "images", "(12, 16, 16)"),
    (dict(images=X[:0], labels=Y[:0]), ValueError, "images", "(0, 1, 16, 16)"),
    (dict(images=X[..., :8, :8]), ValueError, "images", "8x8"),
    (dict(images=X.tolist()), TypeError, "images", "list"),
    (dict(images=X.long()), TypeError, "images", "int64"),
    (dict(num_classes=1), ValueError, "num_classes", "1"),
    (dict(epochs=0), ValueError, "epochs", "0"),
    (dict(batch_size=0), ValueError, "batch_size", "0"),
    (dict(lr=0.0), ValueError, "lr", "0"),
    (dict(seed=-1), ValueError, "seed", "-1"),
    (dict(steps=0), ValueError, "steps", "0"),
]


def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the input check")

    monkeypatch.setattr(torch.optim, "AdamW", refuse)


@pytest.mark.parametrize("change, error, name, given", TRAIN_ERRORS)
def test_train_classifier_input_errors(monkeypatch, change, error, name, given):
    no_training(monkeypatch)
    arguments = dict(images=X, labels=Y, num_classes=3) | change
    with pytest.raises(error, match=rf"^{re.escape(name)} must") as info:
        train_classifier(arguments.pop("images"), arguments.pop("labels"), **arguments)
    assert given.lower() in str(info.value).lower()


@pytest.mark.parametrize(
    "predicted, truth, num_classes, error, name",
    [
        ([0, 1, 2], [0, 1], 3, ValueError, "truth"),
        ([0, 1, 3], [0, 1, 2], 3, ValueError, "predicted"),
        ([0, 1, 2], [0, 1, -2], 3, ValueError, "truth"),
        ([], [], 3, ValueError, "predicted"),
        ([0, 1], [0, 1], 1, ValueError, "num_classes"),
        ([[0, 1]], [[0, 1]], 3, ValueError, "predicted"),
        ([0.0, 1.0], [0, 1], 3, TypeError, "predicted"),
        ([0, 1], [True, False], 3, TypeError, "truth"),
    ],
)
def test_completeness_purity_input_errors(predicted, truth, num_classes, error, name):
    with pytest.raises(error, match=rf"^{name} must.*got"):
        completeness_purity(predicted, truth, num_classes)


def test_classifier_refuses_bad_construction():
    with pytest.raises(ValueError, match="^num_classes must"):
        MorphologyClassifier(1)
    with pytest.raises(ValueError, match="^channels must"):
        MorphologyClassifier(3, channels=())


EVALUATE_ERRORS = [
    (dict(class_names=["a", "b"]), ValueError, "class_names", "3 names"),
    (dict(class_names=["a"]), ValueError, "class_names", "['a']"),
    (dict(class_names=["a", "a", "b"]), ValueError, "class_names", "['a', 'a', 'b']"),
    (dict(class_names="abc"), TypeError, "class_names", "str"),
    (dict(seeds=()), ValueError, "seeds", "[]"),
    (dict(seeds=(1, 1)), ValueError, "seeds", "[1, 1]"),
    (dict(seeds=(-1,)), ValueError, "seeds[0]", "-1"),
    (dict(seeds=5), TypeError, "seeds", "int"),
    (dict(train_labels=Y[:-2]), ValueError, "train_labels", "10"),
    (dict(test_labels=torch.tensor([0, 1, 5] * 4)), ValueError, "class_names", "5"),
    (dict(synthetic_labels=torch.tensor([0, -1, 2] * 4)), ValueError, "synthetic_labels", "-1"),
    (dict(synthetic_images=nan_images()), ValueError, "synthetic_images", "nan"),
    (dict(test_images=inf_images()), ValueError, "test_images", "inf"),
    (dict(test_images=draw(Y, 1, size=(24, 24))), ValueError, "test_images", "(12, 1, 24, 24)"),
    (dict(synthetic_images=X[:0], synthetic_labels=Y[:0]), ValueError, "synthetic_images", "(0, 1, 16, 16)"),
    (dict(train_images=X[0]), ValueError, "train_images", "(1, 16, 16)"),
    (dict(epochs=0), ValueError, "epochs", "0"),
    (dict(batch_size=-3), ValueError, "batch_size", "-3"),
]


@pytest.mark.parametrize("change, error, name, given", EVALUATE_ERRORS)
def test_evaluate_augmentation_input_errors(monkeypatch, change, error, name, given):
    no_training(monkeypatch)
    monkeypatch.setattr(module, "train_classifier", lambda *a, **k: pytest.fail("training started"))
    arguments = dict(
        train_images=X, train_labels=Y, test_images=X, test_labels=Y, synthetic_images=X, synthetic_labels=Y,
        class_names=NAMES, seeds=(0,), epochs=1,
    ) | change
    with pytest.raises(error, match=rf"^{re.escape(name)} must") as info:
        evaluate_augmentation(**arguments)
    assert given.lower() in str(info.value).lower()


def test_conditional_consistency_input_errors(trained):
    model = trained["model"]
    with pytest.raises(TypeError, match="^classifier must be a MorphologyClassifier, got Linear"):
        conditional_consistency(torch.nn.Linear(2, 3), X, Y, 3)
    with pytest.raises(ValueError, match=r"^num_classes must equal the classifier's \(3\), got 4"):
        conditional_consistency(model, X, Y, 4)
    with pytest.raises(ValueError, match="^requested_labels must lie in .*got a label 3"):
        conditional_consistency(model, X, torch.tensor([0, 1, 3] * 4), 3)
    with pytest.raises(ValueError, match="^requested_labels must hold one label per image"):
        conditional_consistency(model, X, Y[:5], 3)
    with pytest.raises(ValueError, match=r"^images must have 1 channel.*got \(12, 2, 16, 16\)"):
        conditional_consistency(model, X.repeat(1, 2, 1, 1), Y, 3)
    with pytest.raises(ValueError, match="^images must be finite"):
        conditional_consistency(model, nan_images(), Y, 3)
