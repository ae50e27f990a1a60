"""The service's default limits (here so ``trimtab --help`` needs no FastAPI)."""

#: Default largest request body (bytes): ``trimtab serve --max-body``.
MAX_BODY = 20_000_000
#: Default time limit of one solve (seconds): ``trimtab serve --solve-timeout``.
SOLVE_TIMEOUT = 30.0
