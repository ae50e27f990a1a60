"""Tax-aware plans against brute force over every direction pattern (200 seeded accounts).

The issue's verification: the relaxation method within 1e-4 (of the account's
value) of the optimum on at least 95% of 200 seeded accounts (asserted on each half
of 100, which is stricter), never infeasible when a pattern is feasible; the exact
method within 1e-6 on all.
"""

from __future__ import annotations

import pytest
from tax_cases import InfeasibleError, brute_force, case, plan, value_after


@pytest.mark.parametrize("seeds", [range(0, 100), range(100, 200)], ids=["0-99", "100-199"])
def test_against_brute_force(seeds: range) -> None:
    close = exact_ok = 0
    misses = []
    for seed in seeds:
        best = brute_force(case(seed))
        for exact_assets in (0, 10):
            c = case(seed, exact_assets=exact_assets)
            try:
                p = plan(c)
            except InfeasibleError:
                assert best is None, f"seed {seed}: plan infeasible, brute force {best}"
                continue
            assert best is not None, f"seed {seed}: brute force infeasible, the plan is not"
            gap = p.tax["objective"] / value_after(c) - best
            assert gap > -1e-7, f"seed {seed}: the plan beats the optimum by {-gap:.3g}"
            if exact_assets == 0:
                close += gap <= 1e-4
                if gap > 1e-4:
                    misses.append((seed, gap))
            else:
                assert p.tax["method"] == "exact"
                assert gap <= 1e-6, f"seed {seed}: exact method off the optimum by {gap:.3g}"
                exact_ok += 1
    print(f"relaxation within 1e-4: {close} of {len(seeds)}; exact within 1e-6: {exact_ok}")
    print("relaxation misses (seed, gap):", misses)
    assert close >= 0.95 * len(seeds)
    assert exact_ok == len(seeds)
