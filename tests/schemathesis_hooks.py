"""Custom schemathesis check of tests/schemathesis_test.ts (see tests/schemathesis.toml)."""
import re

import schemathesis

# The only reasons the API may reject a request its OpenAPI document allows (domain/filter_validation.ts,
# api/exports.ts, api/schedules.ts): a referenced object that does not exist or is not the
# caller's, a cross-field date rule, or a cron expression whose field ranges Temporal refuses
# (the document states the 5-field shape only), a webhook URL whose host does not resolve or
# resolves to a refused address, a `columns` list out of its format's order.
ALLOWED = re.compile(
    r"does not exist|does not belong to project|must not be before date_start"
    r"|^invalid schedule cron or interval: "
    # a webhook or notify_url whose host does not resolve or is a private address (docs/webhooks.md)
    r"|^webhook URL refused: "
    # a `columns` list out of the format's order (the document states names, no repeats, not empty)
    r"|^invalid option columns: column out of the format's order: "
    # which format takes which option is the formats endpoint's `accepted_options`, not the
    # document's; split fractions must sum to 1 (a cross-field rule)
    r"|^option not accepted by format "
    r"|^invalid options: split must be "
)


@schemathesis.check
def schema_valid_rejected_only_for_references(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        message = str(response.json().get("error", ""))
    except Exception:
        message = response.text[:300]
    if not ALLOWED.search(message):
        raise AssertionError(f"Schema-valid request rejected with 400: {message}")
    return None
