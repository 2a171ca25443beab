"""The Galaxy Zoo 2 morphology vector: one named schema for every galaxy catalogue.

Galaxy Zoo 2 (GZ2; Willett et al., "Galaxy Zoo 2: detailed morphological
classifications for 304 122 galaxies from the Sloan Digital Sky Survey",
MNRAS 435, 2835, 2013, table 2) asks volunteers 11 questions ("tasks") in a
decision tree, 37 answers in all.  Every catalogue this package reads — the
debiased GZ2 table of Hart et al. (MNRAS 461, 3663, 2016), the Kaggle
"Galaxy Zoo: the Galaxy Challenge" solutions, Galaxy10 DECaLS class labels,
FITS headers — is mapped onto the same 37 numbers, in this order, with these
names: the :data:`MORPHOLOGY` schema.  A conditional prior is conditioned on
that vector, and ``invsolve augment --query "dust_lane>0.5"`` selects rows by
its names.

Convention: per-task vote fractions
    Entry ``task.answer`` is the fraction of the volunteers *who answered
    that task* who chose that answer, as GZ2 publishes it (Hart et al. 2016's
    ``tNN_<task>_aMM_<answer>_debiased`` columns); the answers of one task
    sum to 1, or are all 0 for a task nobody reached.  The literature's
    selection cuts are written in these fractions (e.g. ``bar > 0.5`` among
    discs).  The Kaggle challenge published *path-weighted* probabilities
    instead (each answer times the probability of reaching its task);
    :meth:`MorphologySchema.from_path_weighted` divides each task by its sum
    to get the per-task fractions, and :meth:`MorphologySchema.path_weighted`
    goes the other way.

Names
    The qualified name of an answer is ``"<task>.<answer>"`` with the GZ2
    table's words, e.g. ``"odd_feature.dust_lane"``, ``"edgeon.yes"``.  An
    answer word that occurs in one task only (``"dust_lane"``, ``"bar"``,
    ``"merger"``, ``"smooth"``, ``"cigar_shaped"``, ...) may be used alone;
    ambiguous words (``"yes"``, ``"no"``, ``"no_bulge"``, ...) need their task
    (:meth:`MorphologySchema.index` lists the candidates).

Tasks and their parent answers (the decision tree)
    ===  ==================  =====================================  ============================
    no.  task                answers                                 reached after
    ===  ==================  =====================================  ============================
    01   smooth_or_features  smooth, features_or_disk, star_or_artifact  (first question)
    02   edgeon              yes, no                                features_or_disk
    03   bar                 bar, no_bar                            edgeon.no
    04   spiral              spiral, no_spiral                      edgeon.no
    05   bulge_prominence    no_bulge, just_noticeable, obvious,    edgeon.no
                             dominant
    06   odd                 yes, no                                (every galaxy)
    07   rounded             completely_round, in_between,          smooth
                             cigar_shaped
    08   odd_feature         ring, lens_or_arc, disturbed,          odd.yes
                             irregular, other, merger, dust_lane
    09   bulge_shape         rounded, boxy, no_bulge                edgeon.yes
    10   arms_winding        tight, medium, loose                   spiral.spiral
    11   arms_number         1, 2, 3, 4, more_than_4, cant_tell     spiral.spiral
    ===  ==================  =====================================  ============================

    The GZ2 answer numbers (``a01`` … ``a38``; ``a35`` is unused and
    ``dust_lane`` is ``a38``) are kept in :attr:`Answer.number`, so that the
    Hart et al. column of an answer is :meth:`MorphologySchema.hart16_column`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Answer", "MorphologySchema", "MORPHOLOGY"]


@dataclass(frozen=True)
class Answer:
    """One answer of the GZ2 decision tree.

    Attributes
    ----------
    task_number, task : int, str
        GZ2 task number (1–11) and name (``"odd_feature"``).
    number, answer : int, str
        GZ2 answer number (1–38) and name (``"dust_lane"``).
    """

    task_number: int
    task: str
    number: int
    answer: str

    @property
    def name(self) -> str:
        """The qualified name ``"<task>.<answer>"``."""
        return f"{self.task}.{self.answer}"


# (task number, task, [(answer number, answer), ...], parent answer or None)
_TREE: tuple[tuple[int, str, tuple[tuple[int, str], ...], str | None], ...] = (
    (1, "smooth_or_features", ((1, "smooth"), (2, "features_or_disk"), (3, "star_or_artifact")), None),
    (2, "edgeon", ((4, "yes"), (5, "no")), "smooth_or_features.features_or_disk"),
    (3, "bar", ((6, "bar"), (7, "no_bar")), "edgeon.no"),
    (4, "spiral", ((8, "spiral"), (9, "no_spiral")), "edgeon.no"),
    (5, "bulge_prominence", ((10, "no_bulge"), (11, "just_noticeable"), (12, "obvious"), (13, "dominant")),
     "edgeon.no"),
    (6, "odd", ((14, "yes"), (15, "no")), None),
    (7, "rounded", ((16, "completely_round"), (17, "in_between"), (18, "cigar_shaped")), "smooth_or_features.smooth"),
    (8, "odd_feature", ((19, "ring"), (20, "lens_or_arc"), (21, "disturbed"), (22, "irregular"), (23, "other"),
                        (24, "merger"), (38, "dust_lane")), "odd.yes"),
    (9, "bulge_shape", ((25, "rounded"), (26, "boxy"), (27, "no_bulge")), "edgeon.yes"),
    (10, "arms_winding", ((28, "tight"), (29, "medium"), (30, "loose")), "spiral.spiral"),
    (11, "arms_number", ((31, "1"), (32, "2"), (33, "3"), (34, "4"), (36, "more_than_4"), (37, "cant_tell")),
     "spiral.spiral"),
)


class MorphologySchema:
    """The 37 named entries of a GZ2 morphology vector (module docstring: conventions).

    Use the module-level instance :data:`MORPHOLOGY`.
    """

    def __init__(self) -> None:
        self.answers: tuple[Answer, ...] = tuple(
            Answer(task_number, task, number, answer)
            for task_number, task, answers, _ in _TREE
            for number, answer in answers
        )
        self.names: tuple[str, ...] = tuple(answer.name for answer in self.answers)
        self.tasks: tuple[str, ...] = tuple(task for _, task, _, _ in _TREE)
        #: parent answer (qualified name) of each task; None for the two first-level tasks
        self.parents: dict[str, str | None] = {task: parent for _, task, _, parent in _TREE}
        self._index = {name: i for i, name in enumerate(self.names)}
        words: dict[str, list[str]] = {}
        for answer in self.answers:
            words.setdefault(answer.answer, []).append(answer.name)
        self._words = words

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return f"MorphologySchema({len(self.tasks)} tasks, {len(self)} answers)"

    def index(self, name: str) -> int:
        """Position of an answer, from its qualified name or an unambiguous answer word.

        Raises
        ------
        ValueError
            Unknown or ambiguous name; the message lists the candidates.
        """
        if not isinstance(name, str):
            raise TypeError(f"a morphology answer name must be a string, got {type(name).__name__}")
        if name in self._index:
            return self._index[name]
        candidates = self._words.get(name, [])
        if len(candidates) == 1:
            return self._index[candidates[0]]
        if candidates:
            raise ValueError(f"morphology answer {name!r} is ambiguous: write one of {', '.join(candidates)}")
        raise ValueError(
            f"unknown morphology answer {name!r}; expected a qualified name such as 'odd_feature.dust_lane' "
            f"or an answer word of one task ({', '.join(w for w, c in self._words.items() if len(c) == 1)})"
        )

    def task_slice(self, task: str) -> slice:
        """The entries of one task, by its name (``"odd_feature"``)."""
        positions = [i for i, answer in enumerate(self.answers) if answer.task == task]
        if not positions:
            raise ValueError(f"unknown GZ2 task {task!r}; expected one of {', '.join(self.tasks)}")
        return slice(positions[0], positions[-1] + 1)

    def hart16_column(self, name: str) -> str:
        """The debiased vote-fraction column of an answer in Hart et al. (2016)'s ``gz2_hart16`` table.

        >>> MORPHOLOGY.hart16_column("dust_lane")
        't08_odd_feature_a38_dust_lane_debiased'
        """
        answer = self.answers[self.index(name)]
        return f"t{answer.task_number:02d}_{answer.task}_a{answer.number:02d}_{answer.answer}_debiased"

    def kaggle_column(self, name: str) -> str:
        """The Kaggle Galaxy Challenge column of an answer (``"Class8.7"`` for ``dust_lane``)."""
        answer = self.answers[self.index(name)]
        task = self.task_slice(answer.task)
        return f"Class{answer.task_number}.{self.index(name) - task.start + 1}"

    def fits_keyword(self, name: str) -> str:
        """The 7-character FITS header keyword of an answer: ``GZ<task>A<answer>``, e.g. ``GZ08A38``."""
        answer = self.answers[self.index(name)]
        return f"GZ{answer.task_number:02d}A{answer.number:02d}"

    def vector(self, values: Mapping[str, float] | None = None) -> np.ndarray:
        """A float32 vector ``(37,)`` from ``{name: fraction}`` (other entries 0).

        >>> v = MORPHOLOGY.vector({"smooth": 1.0, "completely_round": 1.0, "odd.no": 1.0})
        """
        vector = np.zeros(len(self), dtype=np.float32)
        for name, value in (values or {}).items():
            vector[self.index(name)] = value
        return vector

    def check(self, vectors: np.ndarray, name: str = "morphology") -> np.ndarray:
        """Validate vectors ``(..., 37)``: finite, in ``[0, 1]``; returns them as float32.

        Raises
        ------
        ValueError
            Wrong last axis, non-finite values or values outside ``[0, 1]``.
        """
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 0 or array.shape[-1] != len(self):
            raise ValueError(f"{name} must have {len(self)} entries on its last axis (the GZ2 answers), "
                             f"got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds {int((~np.isfinite(array)).sum())} NaN or infinite values")
        if array.size and (array.min() < 0 or array.max() > 1 + 1e-5):
            raise ValueError(f"{name} must be vote fractions in [0, 1], got values from {array.min()} to {array.max()}")
        return array

    def from_path_weighted(self, weighted: np.ndarray) -> np.ndarray:
        """Per-task fractions from path-weighted probabilities (Kaggle's convention), ``(..., 37)``.

        Each task's answers are divided by their sum; a task with sum 0 stays 0.
        """
        weighted = np.asarray(weighted, dtype=np.float64)
        fractions = np.zeros_like(weighted)
        for task in self.tasks:
            part = self.task_slice(task)
            total = weighted[..., part].sum(axis=-1, keepdims=True)
            fractions[..., part] = np.divide(weighted[..., part], total, out=np.zeros_like(weighted[..., part]),
                                             where=total > 0)
        return fractions.astype(np.float32)

    def path_weighted(self, fractions: np.ndarray) -> np.ndarray:
        """Path-weighted probabilities from per-task fractions, ``(..., 37)``.

        The probability of reaching a task is the product of its ancestors'
        answer fractions (tasks 01 and 06 are reached by every galaxy).
        """
        fractions = np.asarray(fractions, dtype=np.float64)
        weighted = np.zeros_like(fractions)
        reach: dict[str, np.ndarray] = {}
        for task in self.tasks:  # parents come before children in GZ2's numbering
            parent = self.parents[task]
            if parent is None:
                reach[task] = np.ones(fractions.shape[:-1] + (1,))
            else:
                parent_task = parent.split(".")[0]
                reach[task] = reach[parent_task] * fractions[..., self.index(parent)][..., None]
            part = self.task_slice(task)
            weighted[..., part] = reach[task] * fractions[..., part]
        return weighted.astype(np.float32)

    def describe(self, vector: Sequence[float], threshold: float = 0.5) -> list[str]:
        """The qualified names whose fraction exceeds ``threshold`` (a readable label)."""
        vector = self.check(np.asarray(vector), "vector")
        return [name for name, value in zip(self.names, vector) if value > threshold]


#: The GZ2 morphology schema: 11 tasks, 37 answers (module docstring).
MORPHOLOGY = MorphologySchema()
