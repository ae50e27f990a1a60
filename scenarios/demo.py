"""A worked example on shipped data: ``python -m scenarios.demo``.

Daily prices of 20 large US stocks (2015-2022, shipped in
``scenarios/examples/sp500_prices.csv.gz``) become annualized estimates
(Ledoit-Wolf covariance, historical means), then a maximum-Sharpe
portfolio under sector caps and a 15% cap per stock.
"""

from __future__ import annotations

import sys
from importlib import resources

import pandas as pd

from models import covariance, expected_returns, returns
from models.mean_variance import max_sharpe, min_variance
from optimizer import Universe
from optimizer.constraints import Bounds, GroupLimit

SECTORS = {
    "tech": ["AAPL", "AMD", "MSFT"],
    "financials": ["BAC", "JPM"],
    "energy": ["CVX", "XOM", "RRC"],
    "health": ["JNJ", "LLY", "MRK", "PFE", "UNH"],
    "staples": ["KO", "PEP", "PG", "WMT"],
    "consumer": ["BBY", "HD"],
    "industrials": ["GE"],
}


def load_prices() -> pd.DataFrame:
    """The shipped daily price history (DataFrame, dates x tickers)."""
    path = resources.files("scenarios") / "examples" / "sp500_prices.csv.gz"
    with resources.as_file(path) as p:
        return pd.read_csv(p, index_col=0, parse_dates=True)


def main() -> int:
    prices = load_prices().loc["2015":"2022"]
    rets = returns.from_prices(prices)
    cov = covariance.ledoit_wolf(rets)
    mu = expected_returns.historical_mean(rets)
    tags = {a: [s] for s, members in SECTORS.items() for a in members}
    uni = Universe(assets=list(prices.columns), tags=tags)
    policy = [Bounds(upper=0.15, name="single-stock cap")] + [
        GroupLimit(tag=s, max=0.30, name=f"{s} cap") for s in SECTORS
    ]
    low = min_variance(cov, mu=mu, constraints=policy, universe=uni)
    best = max_sharpe(mu, cov, constraints=policy, universe=uni)
    table = pd.DataFrame({"min_variance": low.weights, "max_sharpe": best.weights})
    pd.set_option("display.float_format", lambda v: f"{v:8.2%}")
    print(f"{len(rets)} daily returns, {rets.index[0]:%Y-%m-%d} .. {rets.index[-1]:%Y-%m-%d}")
    print(table[(table.abs() > 1e-6).any(axis=1)].to_string())
    for name, a in (("min_variance", low), ("max_sharpe", best)):
        print(
            f"{name:>12}: expected return {a.expected_return:.2%}, volatility "
            f"{a.volatility:.2%}, Sharpe {a.sharpe:.2f}, solver {a.solver}, "
            f"binding: {', '.join(sorted({b['name'] for b in a.binding})) or 'none'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
