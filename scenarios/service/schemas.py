"""The OpenAPI shapes of the service's bodies (documentation: the scenario loader validates).

A JSON request body is a scenario document: the sections of a scenario file,
with the same keys, names and units (:mod:`scenarios.schema`; weights, returns,
volatilities and rates in decimals, money in the portfolio's currency, costs
in basis points). :class:`ScenarioDocument` lists the sections for the
OpenAPI document; the scenario loader checks everything inside them and names
the key path of any problem.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScenarioDocument(BaseModel):
    """A scenario file as JSON (dates as ``"YYYY-MM-DD"`` strings)."""

    model_config = ConfigDict(extra="allow")

    portfolio: dict[str, Any] = Field(description="name, id?, value?, currency?, as_of?")
    assets: list[dict[str, Any]] = Field(description="[{id, name?, tags?}], at least one")
    estimates: dict[str, Any] = Field(
        description='source = "cma" with expected_return, volatility, correlation (inline)'
    )
    model: dict[str, Any] | None = Field(None, description="kind?, objective?, parameters")
    policy: dict[str, Any] | None = Field(None, description="weights (by asset) | profile")
    constraints: dict[str, Any] | None = Field(None, description="long_only?, bounds?, group...")
    tactical: dict[str, Any] | None = None
    holdings: dict[str, Any] | None = Field(
        None, description="values | quantities (+ prices) | weights; cash?"
    )
    costs: dict[str, Any] | None = Field(None, description="bps?, buy_bps?, sell_bps?, ...")
    rebalance: dict[str, Any] | None = Field(
        None, description="tracking_weight?, threshold?, min_trade?, lot_size?, cash_flow?, ..."
    )
    stress: list[dict[str, Any]] | None = None
    validation: dict[str, Any] | None = None


class ErrorDetail(BaseModel):
    """The one error body of every failure."""

    kind: str = Field(
        description="input | infeasible | solver | limit | auth | not_found | conflict | internal"
    )
    message: str
    path: str | None = Field(None, description="key path of the culprit, when known")
    diagnosis: list[dict[str, Any]] | None = Field(
        None, description="infeasible: each constraint to relax, with relax_by"
    )
    request_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class BatchJob(BaseModel):
    """A batch job's state."""

    id: str
    status: str = Field(description="queued | running | done | failed | interrupted")
    progress: dict[str, int] = Field(description="accounts done (ok) and failed so far")
    created: str
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None


def json_body(description: str) -> dict[str, Any]:
    """``openapi_extra`` of an endpoint whose JSON body is a scenario document."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": ScenarioDocument.model_json_schema()}},
        }
    }


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of an endpoint: the error body under each code."""
    return {code: {"model": ErrorBody} for code in codes}
