"""Property-based tests of the galaxy entry points that parse user text or numbers (issue 14, point 8).

The query language, shard specs, explicit vectors and the morphology checks are
fed generated input: a valid input gives the documented result, anything else
one ``ValueError``/``TypeError`` — never an internal error (an ``IndexError``
from the parser, a ``KeyError``), never a silent wrong selection.
"""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st

from invsolve.datasets.galaxy_zoo import select_rows
from invsolve.datasets.morphology import MORPHOLOGY
from invsolve.galaxy.augment import parse_shard
from invsolve.galaxy.generation import parse_vector

PROFILE = settings.get_profile("invsolve-properties")  # registered in tests/conftest.py
DOCUMENTED = (TypeError, ValueError)
RNG = np.random.default_rng(0)
TABLE = Table({"id": np.arange(12, dtype=np.int64), "redshift": RNG.uniform(0, 0.3, 12),
               "morphology": RNG.uniform(0, 1, (12, 37)).astype(np.float32)})
TABLE.meta.update(source="hart16", path="generated")
NAMES = st.sampled_from(["redshift", "id", "dust_lane", "odd.yes", "bar", "smooth_or_features.smooth"])
OPERATORS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal,
             "!=": np.not_equal}


def _column(name):
    return np.asarray(TABLE[name], dtype=float) if name in TABLE.colnames else \
        np.asarray(TABLE["morphology"])[:, MORPHOLOGY.index(name)].astype(float)


@settings(PROFILE, max_examples=60)
@given(st.lists(st.tuples(NAMES, st.sampled_from(sorted(OPERATORS)), st.floats(-1, 2, width=32)), min_size=1,
                max_size=4), st.lists(st.sampled_from(["and", "or", "&", "|"]), min_size=3, max_size=3))
def test_generated_queries_select_what_numpy_selects(comparisons, joins):
    text, masks = [], []
    for number, (name, op, value) in enumerate(comparisons):
        text.append(f"{name} {op} {value!r}")
        masks.append(OPERATORS[op](_column(name), value))  # width-32 floats: exact in float32 and float64
        if number < len(comparisons) - 1:
            text.append(joins[number])
    # "and" binds tighter than "or": evaluate the same way
    groups, current = [], masks[0]
    for join, mask in zip(joins, masks[1:]):
        if join in ("and", "&"):
            current = current & mask
        else:
            groups.append(current)
            current = mask
    expected = np.logical_or.reduce(groups + [current])
    selected = select_rows(TABLE, " ".join(text))
    assert selected.dtype == bool and selected.shape == (12,)
    np.testing.assert_array_equal(selected, expected, err_msg=" ".join(text))


@settings(PROFILE, max_examples=80)
@given(st.text(alphabet=st.sampled_from(list("abdelnorstuy_.<>=!&|() 0123456789-")), max_size=30))
def test_arbitrary_query_text_is_parsed_or_refused_clearly(text):
    try:
        selected = select_rows(TABLE, text)
    except DOCUMENTED as error:
        assert str(error)
    else:
        assert selected.dtype == bool and selected.shape == (12,)


@settings(PROFILE, max_examples=60)
@given(st.text(max_size=12))
def test_shard_specs_are_parsed_or_refused(text):
    try:
        shard = parse_shard(text)
    except ValueError as error:
        assert "--shard" in str(error)
    else:
        k, n = shard
        assert 0 <= k < n


@settings(PROFILE, max_examples=60)
@given(st.dictionaries(st.sampled_from(["dust_lane", "bar", "odd.yes", "yes", "merger", "nonsense"]),
                       st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=4))
def test_explicit_vectors_are_valid_fractions_or_refused(values):
    text = ",".join(f"{name}={value!r}" for name, value in values.items())
    try:
        vector = parse_vector(text)
    except DOCUMENTED as error:
        assert str(error)
        bad = any(name in ("yes", "nonsense") for name in values) or any(
            not (0 <= value <= 1) for value in values.values())
        assert bad, (text, error)
    else:
        assert vector.shape == (37,) and vector.dtype == np.float32
        for name, value in values.items():
            assert vector[MORPHOLOGY.index(name)] == pytest.approx(value)
