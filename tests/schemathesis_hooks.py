"""Custom schemathesis check of tests/schemathesis_test.ts (see tests/schemathesis.toml)."""
import re

import requests
import schemathesis

# The only reasons the API may reject a request its OpenAPI document allows (domain/filter_validation.ts,
# api/exports.ts, api/schedules.ts): a referenced object that does not exist or is not the
# caller's, a cross-field date rule, or a cron expression whose field ranges Temporal refuses
# (the document states the 5-field shape only), a webhook URL whose host does not resolve or
# resolves to a refused address, a `columns` list out of its format's order.
ALLOWED = re.compile(
    r"does not exist|does not belong to project|must not be before date_start"
    r"|^invalid schedule cron or interval: "
    # a schedule interval under the deployment's SCHEDULE_MIN_INTERVAL_SECONDS (a setting the
    # document, the same for every deployment, cannot state)
    r"|^interval must be at least "
    # a webhook or notify_url whose host does not resolve or is a private address (docs/webhooks.md)
    r"|^webhook URL refused: "
    # a `columns` list out of the format's order (the document states names, no repeats, not empty)
    r"|^invalid option columns: column out of the format's order: "
    # which format takes which option is the formats endpoint's `accepted_options`, not the
    # document's; split fractions must sum to 1 (a cross-field rule)
    r"|^option not accepted by format "
    r"|^invalid options: split must be "
    # an image export while SOURCE_IMAGE_HOSTS (a deployment setting) lists no capture host
    r"|^source image host not allowed: "
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


# A schedule the fuzzer creates runs for the rest of the run: an interval of 1 s (the document's
# lower bound, generated often) starts an export every second, so the run's own load grew with
# its length (one run under load: 36 such schedules, 1,700 exports, 676 s instead of ~110 s).
# Schedules under a minute are therefore paused as soon as the API has answered for them
# (created or unpaused): every request and answer is still the fuzzer's own and is checked, only
# their later runs are stopped. tests/schedules_test.ts covers runs of short intervals.
SHORT_INTERVAL_SECONDS = 60
SCHEDULE_ANSWER = re.compile(r"^/api/v2/export-schedules/?(\{id\}/unpause/?)?$")


@schemathesis.hook
def after_call(context, case, response):
    if case.method.upper() != "POST" or not SCHEDULE_ANSWER.match(case.path):
        return
    if response.status_code not in (201, 202):
        return
    try:
        body = response.json()
        schedule_id, seconds = body["id"], body.get("interval_seconds")
    except Exception:
        return
    if seconds is None or seconds >= SHORT_INTERVAL_SECONDS:
        return
    base = response.request.url.split("/api/v2/", 1)[0]
    requests.post(
        f"{base}/api/v2/export-schedules/{schedule_id}/pause/",
        headers={"Authorization": response.request.headers.get("Authorization", "")},
        timeout=120,
    )
