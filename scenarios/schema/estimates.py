"""``[estimates]``: capital-market assumptions, or a price or return file and the estimators."""

from __future__ import annotations

import datetime as dt
import inspect
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models import covariance as _covariance
from models import expected_returns as _expected_returns
from models import returns as _returns
from models._common import validate_returns
from models._ragged import ragged_values
from models.estimates import Estimates
from optimizer.errors import InputError
from scenarios.loader import Reader, Table, check_number, closest, frozen_mapping, join, type_name
from scenarios.schema.common import PCT, Names, by_asset, listing

SOURCES = ("cma", "prices", "returns")
COVARIANCE_ESTIMATORS = ("sample", "ewma", "ledoit_wolf", "oas", "nonlinear_shrinkage")
MEAN_ESTIMATORS = ("historical_mean", "ewma_mean", "shrunk_mean")

_EST_COMMON = ("source", "risk_free_rate")
_EST_CMA = ("expected_return", "volatility", "correlation")
_EST_DATA = (
    "file",
    "start",
    "end",
    "missing",
    "overlap",
    "covariance",
    "covariance_options",
    "expected_returns",
    "expected_returns_options",
)


@dataclass(frozen=True, eq=False)
class EstimatesSpec:
    """How to estimate expected returns and covariance, with the data already parsed.

    ``source="cma"``: ``expected_return`` and ``volatility`` (Series by asset,
    annualized decimals) and ``correlation`` (DataFrame, assets x assets, unit
    diagonal, symmetric; positive semidefiniteness is left to
    :func:`models.covariance.from_cma`, which repairs with a warning).

    ``source="prices"`` / ``"returns"``: ``data`` is the file's table (dates x
    assets, universe order, cut to ``start``..``end``), ``returns`` the
    periodic returns (``models.returns.from_prices(data, missing=missing)``
    for prices, ``data`` itself for returns), and the estimator names and
    keyword options, checked against the estimators' signatures.

    Every Series and DataFrame is labelled by asset id in the universe's order.
    ``origin`` is the scenario file (as named on the command line): the
    estimators' errors and warnings are re-raised with it, the key and the
    data file in front. ``data_notes`` are the warnings of the data checks
    made when the file was read (returns that look like percent, ...),
    already given then and not repeated by :meth:`cov` and :meth:`mu`.
    """

    source: str
    risk_free_rate: float = 0.0
    expected_return: pd.Series | None = None
    volatility: pd.Series | None = None
    correlation: pd.DataFrame | None = None
    file: Path | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    missing: str | None = None
    data: pd.DataFrame | None = None
    returns: pd.DataFrame | None = None
    covariance: str | None = None
    covariance_options: Mapping[str, Any] = field(default_factory=lambda: frozen_mapping({}))
    expected_returns: str | None = None
    expected_returns_options: Mapping[str, Any] = field(default_factory=lambda: frozen_mapping({}))
    origin: str = ""
    data_notes: tuple[str, ...] = ()

    def cov(self) -> pd.DataFrame:
        """The annualized covariance (runs the estimator, or ``from_cma``)."""
        if self.source == "cma":
            return _covariance.from_cma(self.volatility, self.correlation)
        name = str(self.covariance)
        fn = getattr(_covariance, name)
        return self._estimate("covariance", name, fn, self.covariance_options)

    def mu(self) -> pd.Series:
        """The annualized expected returns (runs the estimator, or the CMA figures)."""
        if self.source == "cma":
            return self.expected_return.copy()
        name = str(self.expected_returns)
        fn = getattr(_expected_returns, name)
        return self._estimate("expected_returns", name, fn, self.expected_returns_options)

    def _estimate(
        self, key: str, name: str, fn: Callable[..., Any], options: Mapping[str, Any]
    ) -> Any:
        """``fn(returns, **options)``; its errors and warnings name the key and the data file.

        An InputError becomes ``"<scenario>: estimates.<key> = '<name>' on <source> file
        '<file>' (<T> returns of <n> assets, <first>..<last>): <message>"``; a warning
        gets the data file in front (the data checks' warnings given when the file was read
        are not repeated).
        """
        rets = self.returns
        span = f"{rets.index[0].date()}..{rets.index[-1].date()}" if len(rets) else "no dates"
        about = (
            f"{name!r} on {self.source} file {self.file.name!r} ({len(rets)} returns of "
            f"{rets.shape[1]} assets, {span})"
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fn(rets, **options)
            except InputError as exc:
                raise InputError(
                    f"{_head(self.origin, f'estimates.{key}')} = {about}: {exc}"
                ) from None
        for w in caught:
            if str(w.message) not in self.data_notes:
                warnings.warn(self._data_note(str(w.message)), w.category, stacklevel=3)
        return out

    def _data_note(self, message: str) -> str:
        """A warning about the data, with the scenario, the key and the data file in front."""
        return f"{_head(self.origin, 'estimates.file')}: {self.source} file {self.file.name!r}: {message}"

    def build(self) -> Estimates:
        """:class:`models.estimates.Estimates` from :meth:`mu` and :meth:`cov`."""
        if self.source == "cma":
            return Estimates(mu=self.mu(), cov=self.cov(), source="cma")
        idx = self.returns.index
        what = (
            f"{self.covariance}/{self.expected_returns}({self.source} {self.file.name} "
            f"{idx[0].date()}..{idx[-1].date()})"
        )
        return Estimates(mu=self.mu(), cov=self.cov(), source=what)


def _head(origin: str, where: str) -> str:
    """``"<scenario>: <key path>"`` (the key path alone without a scenario file)."""
    return f"{origin}: {where}" if origin else where


def read_estimates(top: Table, names: Names) -> EstimatesSpec:
    """The ``[estimates]`` section, with its data files read and its options checked."""
    if "estimates" not in top:
        raise top.error("estimates", "missing (required): add an [estimates] table with a source")
    t = top.table("estimates", _EST_COMMON + _EST_CMA + _EST_DATA)
    source = t.string("source", choices=SOURCES)
    rf = t.number("risk_free_rate", 0.0, low=-1, high=1, hint=PCT)
    if source == "cma":
        t.not_with(_EST_DATA, "with source = 'cma'")
        mu = by_asset(t, "expected_return", names, every=True, low=-1, high=1, hint=PCT)
        vol = by_asset(t, "volatility", names, every=True, low=0, high=2, strict_low=True, hint=PCT)
        corr = _correlation(t, names)
        return EstimatesSpec(
            source="cma",
            risk_free_rate=rf,
            expected_return=mu.rename("expected_return"),
            volatility=vol.rename("volatility"),
            correlation=corr,
        )
    t.not_with(_EST_CMA, f"with source = {source!r} (only with source = 'cma')")
    if source == "returns":
        t.not_with(("missing",), "with source = 'returns' (only with source = 'prices')")
    missing = t.string("missing", "raise", choices=_returns.MISSING) if source == "prices" else None
    cov_name = t.string("covariance", "ledoit_wolf", choices=COVARIANCE_ESTIMATORS)
    mean_name = t.string("expected_returns", "historical_mean", choices=MEAN_ESTIMATORS)
    cov_opts = _options(t, "covariance_options", getattr(_covariance, cov_name), cov_name)
    mean_opts = _options(
        t, "expected_returns_options", getattr(_expected_returns, mean_name), mean_name
    )
    _overlap(t, missing, cov_name, cov_opts, mean_name, mean_opts)
    path = t.r.file(t.path("file"), t.raw("file"))
    start, end = t.date("start", None), t.date("end", None)
    if start is not None and end is not None and start > end:
        raise t.error("end", f"{end} is before start {start}")
    data, rets = _data_file(t, names, source, path, start, end, missing)
    notes = _data_checks(t, source, path, rets)
    if "periods_per_year" not in cov_opts or "periods_per_year" not in mean_opts:
        try:
            _returns.periods_per_year(rets)
        except InputError as exc:
            raise t.error(
                "file",
                f"{source} file {path.name!r}: {exc} (as estimates.covariance_options and "
                "estimates.expected_returns_options = { periods_per_year = ... })",
            ) from None
    return EstimatesSpec(
        source=source,
        risk_free_rate=rf,
        file=path,
        start=start,
        end=end,
        missing=missing,
        data=data,
        returns=rets,
        covariance=cov_name,
        covariance_options=frozen_mapping(cov_opts),
        expected_returns=mean_name,
        expected_returns_options=frozen_mapping(mean_opts),
        origin=str(t.r.path),
        data_notes=notes,
    )


def _overlap(
    t: Table,
    missing: str | None,
    cov_name: str,
    cov_opts: dict[str, Any],
    mean_name: str,
    mean_opts: dict[str, Any],
) -> None:
    """``estimates.overlap``: the estimators' ``overlap=`` for histories of different lengths.

    Passed to both estimators (their own ``overlap`` option wins); ``missing = "keep"`` needs
    it, and an estimator without the option is named.
    """
    overlap = t.string("overlap", "full", choices=_covariance.OVERLAPS)
    if overlap != "full":
        for key, module, name in (
            ("covariance", _covariance, cov_name),
            ("expected_returns", _expected_returns, mean_name),
        ):
            if "overlap" not in inspect.signature(getattr(module, name)).parameters:
                raise t.error(
                    "overlap",
                    f"{key} = {name!r} cannot estimate over histories of different lengths; "
                    "use covariance = 'sample', 'ewma' or 'ledoit_wolf' and expected_returns = "
                    "'historical_mean' or 'ewma_mean'",
                )
        cov_opts.setdefault("overlap", overlap)
        mean_opts.setdefault("overlap", overlap)
    if missing == "keep" and "full" in (
        cov_opts.get("overlap", "full"),
        mean_opts.get("overlap", "full"),
    ):
        raise t.error(
            "missing",
            "'keep' keeps each asset's own history (no return before its first price), which "
            'the estimators only take with overlap: add overlap = "pairwise" (or '
            '"stambaugh" for sample and historical_mean) to [estimates]',
        )


def _data_checks(t: Table, source: str, path: Path, rets: pd.DataFrame) -> tuple[str, ...]:
    """The returns checks every estimator makes, once, naming the data file.

    A return at or below -100% (naming asset and date) is an error; the
    warnings (returns that look like percent) are given here with the file in
    front, and their messages returned so that the estimators do not repeat
    them.
    """
    what = f"{source} file {path.name!r}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if rets.isna().to_numpy().any():  # missing = "keep": each asset's own returns
                ragged_values(rets, "estimates", min_obs=2)
            else:
                validate_returns(rets)
        except InputError as exc:
            raise t.error("file", f"{what}: {exc}") from None
    for w in caught:
        warnings.warn(str(t.error("file", f"{what}: {w.message}")), w.category, stacklevel=3)
    return tuple(str(w.message) for w in caught)


def _data_file(
    t: Table,
    names: Names,
    source: str,
    path: Path,
    start: dt.date | None,
    end: dt.date | None,
    missing: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The price or return file: the universe's columns, cut to start..end, and the returns."""
    where = t.path("file")
    raw = t.r.read_csv(where, path, dates=True)
    absent = [a for a in names.assets if a not in raw.columns]
    if absent:
        extra = [c for c in raw.columns if c not in names.asset_set]
        hint = closest(absent[0], extra)
        hint = f"; for {absent[0]!r}{hint}" if hint else ""
        raise t.r.error(
            where, f"{source} file {path.name!r} has no column for {listing(absent)}{hint}"
        )
    data = raw[names.assets].sort_index()
    if start is not None:
        data = data[data.index >= pd.Timestamp(start)]
    if end is not None:
        data = data[data.index <= pd.Timestamp(end)]
    data = t.r.numeric(where, data, f"{source} file {path.name!r}")  # the rows used only
    need = 3 if source == "prices" else 2
    if len(data) < need:
        window = f" between {start or 'the start'} and {end or 'the end'}" if start or end else ""
        raise t.r.error(
            where, f"{source} file {path.name!r} has {len(data)} rows{window}; need at least {need}"
        )
    if source == "prices":
        with t.r.wrap(where):
            rets = _returns.from_prices(data, missing=missing)
        if len(rets) < 2:
            raise t.r.error(where, f"only {len(rets)} return(s) left; need at least 2")
        return data, rets
    if data.isna().any().any():
        col = data.columns[data.isna().any().to_numpy()][0]
        day = data.index[data[col].isna().to_numpy()][0]
        raise t.r.error(where, f"returns file {path.name!r} has no value for {col} on {day.date()}")
    return data, data


def _plain_matrix(value: list, n: int) -> np.ndarray | None:
    """``value`` as an n x n float matrix when every row has n finite numbers, else None.

    The fast path of an inline matrix (a 500 x 500 one in 30 ms instead of a
    check per cell); None sends the caller to the checks that name the bad cell.
    """
    number = (int, float)
    if not all(type(row) is list and len(row) == n for row in value):
        return None
    if not all(type(x) in number for row in value for x in row):
        return None  # bool, text, tables: refused by name on the slow path
    matrix = np.asarray(value, dtype=float)
    return matrix if np.isfinite(matrix).all() else None


def _correlation(t: Table, names: Names) -> pd.DataFrame:
    """``estimates.correlation``: a CSV file, an inline matrix, or a table of pairs."""
    where = t.path("correlation")
    value = t.raw("correlation")
    n = len(names.assets)
    if isinstance(value, str):
        path = t.r.file(where, value)
        frame = t.r.read_csv(where, path, dates=False)
        what = f"correlation file {path.name!r}"
        if set(frame.index) != set(frame.columns):
            rows_only = [x for x in frame.index if x not in set(frame.columns)]
            cols_only = [x for x in frame.columns if x not in set(frame.index)]
            raise t.r.error(
                where,
                f"{what}: rows and columns must name the same assets; rows only: "
                f"{listing(rows_only) or '-'}; columns only: {listing(cols_only) or '-'}",
            )
        absent = [a for a in names.assets if a not in frame.columns]
        if absent:
            extra = [c for c in frame.columns if c not in names.asset_set]
            hint = closest(absent[0], extra)
            hint = f"; for {absent[0]!r}{hint}" if hint else ""
            raise t.r.error(where, f"{what} has no row/column for {listing(absent)}{hint}")
        matrix = t.r.numeric(where, frame.loc[names.assets, names.assets], what).to_numpy()
    elif isinstance(value, list):
        what = "correlation"
        if len(value) != n:
            raise t.r.error(
                where, f"expected {n} rows (one per asset, in [[assets]] order), got {len(value)}"
            )
        matrix = _plain_matrix(value, n)
        for i, row in enumerate(value if matrix is None else ()):
            if not isinstance(row, list) or len(row) != n:
                got = f"{len(row)} values" if isinstance(row, list) else type_name(row)
                raise t.r.error(f"{where}[{i}]", f"expected an array of {n} numbers, got {got}")
            for j, x in enumerate(row):  # the slow path finds and names the bad cell
                check_number(t.r, f"{where}[{i}][{j}]", x)
        if matrix is None:
            matrix = np.asarray(value, dtype=float)
    elif isinstance(value, dict):
        what = "correlation"
        matrix = np.full((n, n), np.nan)
        np.fill_diagonal(matrix, 1.0)
        pos = {a: i for i, a in enumerate(names.assets)}
        seen = np.zeros((n, n), dtype=bool)
        for a, inner in value.items():
            wa = join(where, a)
            names.asset(t.r, wa, a)
            if not isinstance(inner, dict):
                raise t.r.error(
                    wa, f"expected a table asset id -> correlation, got {type_name(inner)}"
                )
            for b, x in inner.items():
                wb = join(wa, b)
                names.asset(t.r, wb, b)
                rho = check_number(t.r, wb, x, low=-1, high=1)
                i, j = pos[a], pos[b]
                if i == j:
                    if rho != 1:
                        raise t.r.error(wb, f"an asset's correlation with itself is 1, got {rho:g}")
                    continue
                if seen[i, j] and matrix[i, j] != rho:
                    raise t.r.error(
                        wb, f"given twice with different values: {matrix[i, j]:g} and {rho:g}"
                    )
                matrix[i, j] = matrix[j, i] = rho
                seen[i, j] = seen[j, i] = True
        gaps = [
            f"{names.assets[i]}-{names.assets[j]}"
            for i in range(n)
            for j in range(i + 1, n)
            if not seen[i, j]
        ]
        if gaps:
            raise t.r.error(
                where, f"missing pairs: {listing(gaps)}; every pair needs a correlation"
            )
    else:
        raise t.r.error(
            where,
            "expected a CSV file name, an array of rows, or a table of pairs; "
            f"got {type_name(value)}",
        )
    _check_correlation(t.r, where, matrix, names.assets, what)
    index = pd.Index(names.assets, dtype=object)
    return pd.DataFrame(matrix, index=index, columns=index.copy())


def _check_correlation(r: Reader, where: str, m: np.ndarray, assets: list[str], what: str) -> None:
    """A unit diagonal, entries in [-1, 1], finite and symmetric."""
    tol = 1e-8
    n = len(assets)
    if not np.isfinite(m).all():
        i, j = np.argwhere(~np.isfinite(m))[0]
        raise r.error(where, f"{what}: missing or not finite for {assets[i]}-{assets[j]}")
    for i in range(n):
        if abs(m[i, i] - 1) > tol:
            raise r.error(where, f"{what}: the diagonal must be 1; {assets[i]} has {m[i, i]:g}")
    if (np.abs(m) > 1 + tol).any():
        i, j = np.argwhere(np.abs(m) > 1 + tol)[0]
        raise r.error(
            where, f"{what}: {assets[i]}-{assets[j]} is {m[i, j]:g}; correlations are in [-1, 1]"
        )
    asym = np.abs(m - m.T) > tol
    if asym.any():
        i, j = np.argwhere(asym)[0]
        raise r.error(
            where,
            f"{what} is not symmetric: {assets[i]}-{assets[j]} is {m[i, j]:g} but "
            f"{assets[j]}-{assets[i]} is {m[j, i]:g}",
        )


#: Options that are not estimator settings.
_NOT_OPTIONS = ("return_intensity",)
#: Valid values of string options, by (estimator, option).
_CHOICES: dict[tuple[str, str], Sequence[str]] = {
    ("ledoit_wolf", "target"): _covariance.TARGETS,
    ("historical_mean", "method"): _expected_returns.METHODS,
    ("shrunk_mean", "target"): _expected_returns.SHRINK_TARGETS,
}
#: Options that must be positive numbers.
_POSITIVE = ("halflife", "periods_per_year", "n_factors")


def _options(t: Table, key: str, fn: Callable[..., Any], fn_name: str) -> dict[str, Any]:
    """Keyword options of an estimator, checked against its signature."""
    raw = t.raw(key, {})
    where = t.path(key)
    if not isinstance(raw, dict):
        raise t.r.error(where, f"expected a table of options, got {type_name(raw)} {raw!r}")
    params = list(inspect.signature(fn).parameters.values())[1:]  # the first is the data
    accepted = {
        p.name: p
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in _NOT_OPTIONS
    }
    for name, value in raw.items():
        w = join(where, name)
        if name not in accepted:
            valid = ", ".join(sorted(accepted)) or "none"
            raise t.r.error(
                w, f"{fn_name} takes no option {name!r}{closest(name, accepted)}; valid: {valid}"
            )
        choices = _CHOICES.get((fn_name, name))
        if name in _POSITIVE:
            check_number(t.r, w, value, low=0, strict_low=True)
        elif choices is not None:
            if not isinstance(value, str) or value not in choices:
                raise t.r.error(
                    w,
                    f"unknown value {value!r}{closest(str(value), choices)}; valid: "
                    + ", ".join(map(repr, choices)),
                )
        else:
            _check_annotation(t.r, w, value, str(accepted[name].annotation))
    for name, p in accepted.items():
        if p.default is p.empty and name not in raw:
            raise t.r.error(where, f"{fn_name} needs the option {name!r}")
    return dict(raw)


def _check_annotation(r: Reader, where: str, value: object, annotation: str) -> None:
    """A TOML value of a type the parameter's annotation admits (when it says)."""
    allowed = {
        "str": isinstance(value, str),
        "float": isinstance(value, int | float) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
    }
    named = [k for k in allowed if re.search(rf"\b{k}\b", annotation)]
    if named and not any(allowed[k] for k in named):
        raise r.error(where, f"expected {' or '.join(named)}, got {type_name(value)} {value!r}")
