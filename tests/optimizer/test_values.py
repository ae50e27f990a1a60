"""Constraints and the universe as values (issue 9, "Constraints and the universe as values").

Every constraint class is frozen, compares and hashes by content (a dict and a Series with the same
content give equal constraints; the priority is part of the value), holds its per-asset data as
read-only copies (editing what the caller passed in changes nothing, neither the constraint nor the
answer of a solve), and pickles to an equal value. The same for :class:`Universe`. Bad priorities
raise ``InputError`` naming the constraint.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import mean_variance
from optimizer import compiled
from optimizer.constraints import (
    Bounds,
    Budget,
    DeviationBand,
    ExposureLimit,
    GroupLimit,
    LeverageLimit,
    LinearConstraint,
    LongOnly,
    TrackingErrorLimit,
    TurnoverLimit,
)
from optimizer.errors import InputError
from optimizer.universe import Universe

ASSETS = ["a", "b", "c", "d"]
TAGS = {"a": ["eq"], "b": ["eq"], "c": ["bd"], "d": ["bd", "alt"]}
VOLS = np.array([0.05, 0.10, 0.15, 0.20])
CORR = np.full((4, 4), 0.3) + 0.7 * np.eye(4)
COV = pd.DataFrame(CORR * np.outer(VOLS, VOLS), index=ASSETS, columns=ASSETS)
EQUAL = {a: 0.25 for a in ASSETS}


def _base_cases() -> dict[str, tuple[type, dict]]:
    """One constructor and keyword set per constraint class (plus a tag and an assets group)."""
    return {
        "Budget": (Budget, {"total": 1.0}),
        "LongOnly": (LongOnly, {}),
        "Bounds": (Bounds, {"lower": 0.0, "upper": {"a": 0.5, "b": 0.4}}),
        "GroupLimit-tag": (GroupLimit, {"tag": "eq", "max": 0.6}),
        "GroupLimit-assets": (GroupLimit, {"assets": ("a", "c"), "min": 0.2}),
        "DeviationBand": (DeviationBand, {"reference": dict(EQUAL), "width": 0.05}),
        "TurnoverLimit": (TurnoverLimit, {"current": dict(EQUAL), "max": 0.2}),
        "LeverageLimit": (LeverageLimit, {"max": 1.5}),
        "TrackingErrorLimit": (TrackingErrorLimit, {"benchmark": dict(EQUAL), "max": 0.02}),
        "ExposureLimit": (
            ExposureLimit,
            {"scores": {"a": 1.0, "b": 0.5, "c": 0.0, "d": -0.5}, "min": 0.1, "max": 0.9},
        ),
        "LinearConstraint": (
            LinearConstraint,
            {"coefficients": {"a": 1.0, "b": -1.0}, "lower": 0.0},
        ),
        "LinearConstraint-frame": (
            LinearConstraint,
            {
                "coefficients": pd.DataFrame(
                    [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]],
                    index=["spread", "pair"],
                    columns=ASSETS,
                ),
                "upper": [0.1, 0.6],
            },
        ),
    }


CASES = _base_cases()

# one change of each field (name and priority included) -> a different value
CHANGES: list[tuple[str, str, object]] = [
    ("Budget", "total", 0.9),
    ("LongOnly", "name", "long only 2"),
    ("Bounds", "lower", 0.01),
    ("Bounds", "upper", {"a": 0.5, "b": 0.41}),
    ("Bounds", "upper", {"a": 0.5, "c": 0.4}),
    ("GroupLimit-tag", "tag", "bd"),
    ("GroupLimit-tag", "max", 0.61),
    ("GroupLimit-tag", "min", 0.1),
    ("GroupLimit-assets", "assets", ("a", "d")),
    ("GroupLimit-assets", "min", 0.25),
    ("DeviationBand", "reference", {**EQUAL, "a": 0.3, "b": 0.2}),
    ("DeviationBand", "width", 0.06),
    ("DeviationBand", "width", {"a": 0.05}),
    ("DeviationBand", "tag", "eq"),
    ("TurnoverLimit", "current", {**EQUAL, "c": 0.2, "d": 0.3}),
    ("TurnoverLimit", "max", 0.25),
    ("LeverageLimit", "max", 1.4),
    ("TrackingErrorLimit", "benchmark", {"a": 0.5, "b": 0.5}),
    ("TrackingErrorLimit", "max", 0.03),
    ("ExposureLimit", "scores", {"a": 1.0, "b": 0.5, "c": 0.0, "d": -0.4}),
    ("ExposureLimit", "min", 0.2),
    ("ExposureLimit", "max", 0.8),
    ("LinearConstraint", "coefficients", {"a": 1.0, "b": -2.0}),
    ("LinearConstraint", "lower", 0.01),
    ("LinearConstraint", "upper", 0.5),
    ("LinearConstraint-frame", "upper", [0.1, 0.7]),
]
for _case in CASES:
    CHANGES.append((_case, "name", "another name"))
    CHANGES.append((_case, "priority", 1))


def build(case: str, **over):
    """A fresh constraint of ``case`` (deep-copied inputs), with fields overridden."""
    cls, kwargs = CASES[case]
    return cls(**{**copy.deepcopy(kwargs), **over})


# ----------------------------------------------------------------------------- equality, hash


@pytest.mark.parametrize("case", list(CASES))
def test_same_content_is_equal_with_equal_hash(case: str) -> None:
    one, two = build(case), build(case)
    assert one == two
    assert hash(one) == hash(two)
    assert len({one, two}) == 1
    assert {one: "x"}[two] == "x"
    soft_one, soft_two = build(case, priority=2), build(case, priority=2)
    assert soft_one == soft_two and hash(soft_one) == hash(soft_two)


@pytest.mark.parametrize(
    ("case", "field", "value"), CHANGES, ids=[f"{c}-{f}-{i}" for i, (c, f, _) in enumerate(CHANGES)]
)
def test_any_field_change_makes_a_different_value(case: str, field: str, value) -> None:
    base = build(case)
    other = build(case, **{field: value})
    assert base != other
    assert other != base
    assert len({base, other}) == 2


@pytest.mark.parametrize("case", list(CASES))
def test_priority_is_part_of_the_value(case: str) -> None:
    hard, one, two = build(case), build(case, priority=1), build(case, priority=2)
    assert len({hard, one, two}) == 3
    assert hard != one and one != two and hard != two
    assert one.priority == 1 and two.priority == 2 and hard.priority is None
    # a numpy integer is the same level as the int
    assert build(case, priority=np.int64(2)) == two
    assert hash(build(case, priority=np.int64(2))) == hash(two)


def test_different_classes_with_similar_fields_are_unequal() -> None:
    assert LeverageLimit(max=0.2, name="x") != TurnoverLimit(current=EQUAL, max=0.2, name="x")
    assert Budget(1.0) != LongOnly()


# per-asset fields: case -> field names holding a mapping asset -> number
PER_ASSET = {
    "Bounds": ["upper"],
    "DeviationBand": ["reference"],
    "TurnoverLimit": ["current"],
    "TrackingErrorLimit": ["benchmark"],
    "ExposureLimit": ["scores"],
    "LinearConstraint": ["coefficients"],
}
PER_ASSET_PAIRS = [(c, f) for c, fs in PER_ASSET.items() for f in fs]


@pytest.mark.parametrize(("case", "field"), PER_ASSET_PAIRS)
def test_series_and_dict_inputs_with_same_content_are_equal(case: str, field: str) -> None:
    mapping = dict(CASES[case][1][field])
    from_dict = build(case, **{field: dict(mapping)})
    from_series = build(case, **{field: pd.Series(mapping)})
    from_object_series = build(case, **{field: pd.Series(mapping, dtype=object)})
    assert from_dict == from_series == from_object_series
    assert hash(from_dict) == hash(from_series) == hash(from_object_series)


def test_mapping_order_is_not_part_of_the_content() -> None:
    """A mapping asset -> number is the same policy whatever the order of its keys."""
    fwd = {"a": 0.5, "b": 0.4}
    rev = {"b": 0.4, "a": 0.5}
    assert Bounds(upper=fwd) == Bounds(upper=rev)
    assert hash(Bounds(upper=fwd)) == hash(Bounds(upper=rev))
    assert DeviationBand(reference=pd.Series(EQUAL), width=0.05) == DeviationBand(
        reference=pd.Series(EQUAL).iloc[::-1], width=0.05
    )


_weights = st.dictionaries(
    st.sampled_from(ASSETS),
    st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False),
    min_size=1,
)


@settings(max_examples=60, deadline=None)
@given(mapping=_weights, priority=st.sampled_from([None, 1, 2, 7]))
def test_dict_series_pickle_agree_for_any_content(mapping: dict, priority) -> None:
    for make in (
        lambda m: Bounds(upper=m, priority=priority),
        lambda m: DeviationBand(reference=m, width=0.05, priority=priority),
        lambda m: ExposureLimit(scores={**dict.fromkeys(ASSETS, 0.0), **m}, max=1.0),
        lambda m: LinearConstraint(coefficients=m, upper=0.3, priority=priority),
    ):
        from_dict, from_series = make(dict(mapping)), make(pd.Series(mapping, dtype=float))
        assert from_dict == from_series
        assert hash(from_dict) == hash(from_series)
        back = pickle.loads(pickle.dumps(from_series))
        assert back == from_dict and hash(back) == hash(from_dict)


# ----------------------------------------------------------------------------- pickle, frozen


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("priority", [None, 3])
def test_pickle_round_trip_is_equal(case: str, priority) -> None:
    c = build(case, priority=priority)
    back = pickle.loads(pickle.dumps(c))
    assert back == c
    assert hash(back) == hash(c)
    assert type(back) is type(c) and back.priority == priority


@pytest.mark.parametrize("case", list(CASES))
def test_constraints_are_frozen(case: str) -> None:
    c = build(case)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.name = "renamed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.priority = 1  # type: ignore[misc]


# ----------------------------------------------------------------------------- input edits

# (case, field, kind of input, edit of that input in place)
EDITS = [
    ("Bounds", "upper", "series"),
    ("Bounds", "upper", "dict"),
    ("DeviationBand", "reference", "series"),
    ("DeviationBand", "reference", "dict"),
    ("TurnoverLimit", "current", "series"),
    ("TrackingErrorLimit", "benchmark", "series"),
    ("ExposureLimit", "scores", "series"),
    ("ExposureLimit", "scores", "dict"),
    ("LinearConstraint", "coefficients", "series"),
    ("LinearConstraint-frame", "coefficients", "frame"),
]

# constraints that bind at the min-variance answer (so an edit of their data would show)
BINDING = {
    "Bounds": {"upper": {"a": 0.3, "b": 0.4}},
    "DeviationBand": {"reference": dict(EQUAL), "width": 0.05},
    "TurnoverLimit": {"current": dict(EQUAL), "max": 0.2},
    "TrackingErrorLimit": {"benchmark": dict(EQUAL), "max": 0.02},
    "ExposureLimit": {"scores": {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}, "max": 0.4},
    "LinearConstraint": {"coefficients": {"a": 1.0, "b": -1.0}, "upper": 0.2},
    "LinearConstraint-frame": {
        "coefficients": pd.DataFrame(
            [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]], index=["spread", "pair"], columns=ASSETS
        ),
        "upper": [0.2, 1.0],
    },
}


def _input(kind: str, data):
    if kind == "series":
        return pd.Series(dict(data), dtype=float)
    if kind == "dict":
        return dict(data)
    return data.copy()


def _edit(kind: str, obj) -> None:
    """Change the caller's object in place (every value moves)."""
    if kind == "series":
        obj.iloc[0] = obj.iloc[0] + 0.37
        obj.loc[obj.index[-1]] = -0.11
    elif kind == "dict":
        for k in list(obj):
            obj[k] = obj[k] + 0.37
        obj["d"] = 0.123
    else:
        obj.iloc[0, 0] = 5.0
        obj.loc["pair", "c"] = -3.0


@pytest.mark.parametrize(("case", "field", "kind"), EDITS)
def test_editing_the_callers_input_changes_nothing(case: str, field: str, kind: str) -> None:
    cls = CASES[case][0]
    kwargs = copy.deepcopy(BINDING[case])
    original = copy.deepcopy(kwargs[field])
    given_obj = _input(kind, original)
    c = cls(**{**kwargs, field: given_obj})
    reference = cls(**copy.deepcopy({**kwargs, field: _input(kind, original)}))
    stored = copy.deepcopy(getattr(c, field))
    h = hash(c)
    before = mean_variance.min_variance(COV, constraints=[c])

    _edit(kind, given_obj)

    assert c == reference
    assert hash(c) == h
    now = getattr(c, field)
    if isinstance(stored, pd.Series | pd.DataFrame):
        assert now.equals(stored), f"{case}.{field} changed after the caller edited its input"
    after = mean_variance.min_variance(COV, constraints=[c])
    compiled.SHARED.clear()
    fresh = mean_variance.min_variance(COV, constraints=[reference])
    np.testing.assert_allclose(after.weights, before.weights, atol=1e-12, rtol=0)
    np.testing.assert_allclose(after.weights, fresh.weights, atol=1e-10, rtol=0)
    # the constraint binds, so a changed limit would have moved the answer
    assert before.binding, f"{case} does not bind in this test: the check would be empty"


READONLY = [
    ("Bounds", "upper"),
    ("DeviationBand", "reference"),
    ("TurnoverLimit", "current"),
    ("TrackingErrorLimit", "benchmark"),
    ("ExposureLimit", "scores"),
]


@pytest.mark.parametrize(("case", "field"), READONLY)
def test_the_constraints_own_series_is_read_only(case: str, field: str) -> None:
    c = build(case)
    own = getattr(c, field)
    assert isinstance(own, pd.Series)
    snapshot = own.copy(deep=True)
    h = hash(c)
    with pytest.raises((ValueError, TypeError)):
        own.iloc[0] = 9.0
    with pytest.raises((ValueError, TypeError)):
        own.loc[own.index[0]] = 9.0
    with pytest.raises((ValueError, TypeError)):
        own.to_numpy()[0] = 9.0
    assert getattr(c, field).equals(snapshot)
    assert hash(c) == h


@pytest.mark.parametrize("case", ["LinearConstraint", "LinearConstraint-frame"])
def test_the_constraints_own_coefficients_are_read_only(case: str) -> None:
    """LinearConstraint holds a DataFrame: it must be as read-only as the Series of the others."""
    c = build(case)
    snapshot = c.coefficients.copy(deep=True)
    h = hash(c)
    with pytest.raises((ValueError, TypeError)):
        c.coefficients.iloc[0, 0] = 9.0
    assert c.coefficients.equals(snapshot), "the constraint's coefficients changed in place"
    assert hash(c) == h, "the constraint's hash changed: a cache keyed by it is now stale"


# ----------------------------------------------------------------------------- universe


def test_universe_equality_and_hash_by_content() -> None:
    one = Universe(ASSETS, tags=copy.deepcopy(TAGS))
    two = Universe(list(ASSETS), tags={k: tuple(v) for k, v in reversed(TAGS.items())})
    assert one == two and hash(one) == hash(two)
    assert len({one, two}) == 1
    assert one != Universe(ASSETS, tags={**TAGS, "c": ["bd", "eq"]})
    assert one != Universe(ASSETS, tags={k: v for k, v in TAGS.items() if k != "d"})
    assert one != Universe(list(reversed(ASSETS)), tags=TAGS)
    assert len({one, Universe(ASSETS)}) == 2
    back = pickle.loads(pickle.dumps(one))
    assert back == one and hash(back) == hash(one)
    assert back.members("eq") == ["a", "b"]


def test_universe_tag_string_and_list_are_the_same_value() -> None:
    assert Universe(["a", "b"], tags={"a": "eq"}) == Universe(["a", "b"], tags={"a": ["eq"]})


def test_editing_the_tags_mapping_passed_in_changes_nothing() -> None:
    tags = copy.deepcopy(TAGS)
    uni = Universe(ASSETS, tags=tags)
    reference = Universe(ASSETS, tags=copy.deepcopy(TAGS))
    h = hash(uni)
    group = [GroupLimit(tag="eq", max=0.3)]
    before = mean_variance.min_variance(COV, constraints=group, universe=uni)

    tags["c"].append("eq")  # an inner list
    tags["d"] = ["eq"]  # a key
    del tags["a"]

    assert uni == reference and hash(uni) == h
    assert uni.members("eq") == ["a", "b"]
    after = mean_variance.min_variance(COV, constraints=group, universe=uni)
    np.testing.assert_allclose(after.weights, before.weights, atol=1e-12, rtol=0)
    assert before.weights[["a", "b"]].sum() == pytest.approx(0.3, abs=1e-7)


def test_the_universes_own_tags_are_read_only() -> None:
    """A frozen value whose hash is its content: its tags mapping must not be editable."""
    uni = Universe(ASSETS, tags=copy.deepcopy(TAGS))
    h = hash(uni)
    with pytest.raises((TypeError, AttributeError)):
        uni.tags["c"] = ("eq",)  # type: ignore[index]
    assert uni.members("eq") == ["a", "b"]
    assert hash(uni) == h


# ----------------------------------------------------------------------------- priorities

BAD_PRIORITIES = [0, -1, 1.5, "1", True]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("bad", BAD_PRIORITIES, ids=repr)
def test_bad_priority_raises_naming_the_constraint(case: str, bad) -> None:
    with pytest.raises(InputError, match="my policy row") as info:
        build(case, name="my policy row", priority=bad)
    assert "priority" in str(info.value)


@pytest.mark.parametrize("bad", BAD_PRIORITIES, ids=repr)
def test_bad_priority_names_a_default_name(bad) -> None:
    with pytest.raises(InputError, match="turnover limit"):
        TurnoverLimit(current=EQUAL, max=0.2, priority=bad)
    with pytest.raises(InputError, match="group eq"):
        GroupLimit(tag="eq", max=0.5, priority=bad)
