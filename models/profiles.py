"""Investor risk profiles and their time-horizon adjustment.

Three base allocations across six asset classes (ids as in the shipped
``profile_*.toml`` examples), in percent::

    asset class                  id            conservative  moderate  aggressive
    US equity                    US_EQ              20           35         45
    International equity         INTL_EQ            10           15         25
    Fixed income                 FIXED_INCOME       50           30         15
    Real estate                  REAL_ESTATE        10           10          8
    Commodities                  COMMODITIES         5            5          5
    Cash                         CASH                5            5          2

:func:`policy` adjusts a base allocation for the investor's horizon (years):

* over 20 years: +10 points of equity, split between ``US_EQ`` and
  ``INTL_EQ`` in proportion to their base weights, taken 80/20 from
  ``FIXED_INCOME`` (-8) and ``CASH`` (-2);
* under 5 years: +15 points to ``FIXED_INCOME`` (+10.5) and ``CASH`` (+4.5),
  split 70/30, taken 60/40 from ``US_EQ`` (-9) and ``INTL_EQ`` (-6);
* 5 to 20 years (both included): no adjustment.

For example ``policy("aggressive", 25)`` is 51.43 / 28.57 / 7 / 8 / 5 / 0 and
``policy("conservative", 3)`` is 11 / 4 / 60.5 / 10 / 5 / 9.5 (percent).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandas as pd

from optimizer.errors import InputError
from optimizer.validation import finite_number, names

__all__ = [
    "ASSET_CLASSES",
    "LONG_HORIZON",
    "PROFILES",
    "SHORT_HORIZON",
    "Profile",
    "get_profile",
    "policy",
]

#: The asset-class ids of the seed profiles, in order.
ASSET_CLASSES = ("US_EQ", "INTL_EQ", "FIXED_INCOME", "REAL_ESTATE", "COMMODITIES", "CASH")
#: Horizons above this many years get more equity.
LONG_HORIZON = 20.0
#: Horizons below this many years get more fixed income and cash.
SHORT_HORIZON = 5.0
#: Long horizons: points of equity added, and where they come from (decimals).
_LONG_FROM = {"FIXED_INCOME": 0.08, "CASH": 0.02}
_LONG_EQUITY = 0.10
#: Short horizons: points moved, by asset class (decimals; they sum to 0).
_SHORT_SHIFT = {"FIXED_INCOME": 0.105, "CASH": 0.045, "US_EQ": -0.09, "INTL_EQ": -0.06}
_EQUITY = ("US_EQ", "INTL_EQ")
#: The classes the adjustment moves: every profile's base names them.
_MOVED = ("US_EQ", "INTL_EQ", "FIXED_INCOME", "CASH")
#: Base weights must sum to 1 within this; weights are rounded to this many decimals.
_SUM_TOL = 1e-9
_DECIMALS = 12


@dataclass(frozen=True, eq=False)
class Profile:
    """A named base allocation by asset class.

    Parameters
    ----------
    name : str
        The profile's name (``"moderate"``).
    base : pandas.Series
        Base weights (decimals, non-negative, summing to 1), labelled by
        asset-class id; it must name ``US_EQ``, ``INTL_EQ``,
        ``FIXED_INCOME`` and ``CASH`` (the classes the horizon adjustment
        moves; 0 is allowed). Stored as a float copy named ``name``.

    Raises
    ------
    InputError
        An empty name, base weights that are not numbers, negative, not
        summing to 1, with duplicate labels, or without the moved classes.
    """

    name: str
    base: pd.Series

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError(f"Profile name must be a non-empty string, got {self.name!r}")
        where = f"profile {self.name!r} base"
        if not isinstance(self.base, pd.Series):
            raise InputError(
                f"{where} must be a pandas Series of weights by asset class, "
                f"got {type(self.base).__name__}"
            )
        if self.base.index.has_duplicates:
            dup = self.base.index[self.base.index.duplicated()]
            raise InputError(f"{where} names {names(dup)} twice: give each asset class once")
        missing = [c for c in _MOVED if c not in self.base.index]
        if missing:
            raise InputError(
                f"{where} lacks {names(missing)}: the horizon adjustment moves "
                f"{', '.join(_MOVED)}, so name each of them (0 is allowed)"
            )
        values = {k: finite_number(v, what=f"{where} weight of {k}") for k, v in self.base.items()}
        negative = [k for k, v in values.items() if v < 0]
        if negative:
            raise InputError(
                f"{where} weight of {negative[0]} is {values[negative[0]]:g}: "
                "profile weights must be non-negative"
            )
        total = math.fsum(values.values())
        if abs(total - 1.0) > _SUM_TOL:
            raise InputError(
                f"{where} weights sum to {total:.10g}, not 1: give decimals of the portfolio "
                "(0.35 is 35%)"
            )
        base = pd.Series(values, dtype=float, name=self.name)
        object.__setattr__(self, "base", base)


def _seed(name: str, percent: tuple[float, ...]) -> Profile:
    return Profile(name, pd.Series(np.array(percent) / 100.0, index=list(ASSET_CLASSES)))


#: The seed profiles by name.
PROFILES: Mapping[str, Profile] = MappingProxyType(
    {
        p.name: p
        for p in (
            _seed("conservative", (20, 10, 50, 10, 5, 5)),
            _seed("moderate", (35, 15, 30, 10, 5, 5)),
            _seed("aggressive", (45, 25, 15, 8, 5, 2)),
        )
    }
)


def get_profile(name: str | Profile) -> Profile:
    """A seed profile by name (a :class:`Profile` is returned as is).

    Raises
    ------
    InputError
        ``"unknown profile 'x'; choices: conservative, moderate, aggressive"``.
    """
    if isinstance(name, Profile):
        return name
    if isinstance(name, str) and name in PROFILES:
        return PROFILES[name]
    raise InputError(f"unknown profile {name!r}; choices: {', '.join(PROFILES)}")


def policy(profile: str | Profile, horizon_years: float) -> pd.Series:
    """The horizon-adjusted policy weights of a profile.

    Parameters
    ----------
    profile : str or Profile
        ``"conservative"``, ``"moderate"``, ``"aggressive"`` (:data:`PROFILES`)
        or a :class:`Profile` of one's own.
    horizon_years : float
        The investment horizon in years, a positive number. Over
        :data:`LONG_HORIZON` (20): +10 points of equity split between US_EQ
        and INTL_EQ in proportion to their base weights, taken 8 from
        FIXED_INCOME and 2 from CASH. Under :data:`SHORT_HORIZON` (5): +10.5
        points to FIXED_INCOME and +4.5 to CASH, taken 9 from US_EQ and 6
        from INTL_EQ. From 5 to 20 years (both included): the base.

    Returns
    -------
    pandas.Series
        Weights (decimals, non-negative, summing to 1 within 1e-11), labelled
        by asset class in the base's order, rounded to 12 decimals (float
        noise removed: 0.2 - 0.09 gives 0.11), named after the profile.

    Raises
    ------
    InputError
        An unknown profile (the choices named); a horizon that is not a
        positive number; an adjustment that would take more from an asset
        class than the profile holds, or split equity that a profile does
        not hold (profiles of one's own only: the seed profiles never do).
    """
    prof = get_profile(profile)
    years = finite_number(horizon_years, what="horizon_years", positive=True)
    w = prof.base.copy()
    if years > LONG_HORIZON:
        equity = float(w[list(_EQUITY)].sum())
        if equity <= 0:
            raise InputError(
                f"profile {prof.name!r} holds no US_EQ or INTL_EQ: the over-"
                f"{LONG_HORIZON:g}-year adjustment adds equity in proportion to them; give one "
                f"a base weight or use a horizon of {LONG_HORIZON:g} years or less"
            )
        for c in _EQUITY:
            w[c] += _LONG_EQUITY * prof.base[c] / equity
        shift = {c: -v for c, v in _LONG_FROM.items()}
        rule = f"over {LONG_HORIZON:g} years"
    elif years < SHORT_HORIZON:
        shift = _SHORT_SHIFT
        rule = f"under {SHORT_HORIZON:g} years"
    else:
        shift = {}
        rule = ""
    for c, v in shift.items():
        w[c] += v
        if w[c] < -_SUM_TOL:
            raise InputError(
                f"profile {prof.name!r}: the {rule} adjustment takes {-v:g} from {c}, which "
                f"holds {prof.base[c]:g}: give {c} a base weight of at least {-v:g} or use a "
                "horizon from 5 to 20 years"
            )
    return w.clip(lower=0.0).round(_DECIMALS).rename(prof.name)
