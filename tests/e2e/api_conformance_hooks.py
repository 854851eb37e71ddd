"""Schemathesis hooks for the API conformance run (tests/e2e/api_conformance.rs).

Only what the OpenAPI document cannot say goes here; everything else is in the document.
"""

import schemathesis
from schemathesis import GenerationMode


@schemathesis.hook("map_case").apply_to(path="/plants/search")
def min_mwh_not_above_max_mwh(ctx, case):
    """`/plants/search` refuses `min_mwh` > `max_mwh` with a 400 ("swap them"). OpenAPI
    cannot relate two query parameters, so a request the schema calls valid can still break
    that rule; positive cases get the two swapped, so they test an accepted range, and the
    positive_data_acceptance check stays on for the operation. Negative cases are left alone:
    they expect a 4xx anyway."""
    query = case.query
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE or not query:
        return case
    low, high = query.get("min_mwh"), query.get("max_mwh")
    try:
        if low is not None and high is not None and float(low) > float(high):
            query["min_mwh"], query["max_mwh"] = high, low
    except (TypeError, ValueError):
        pass
    return case
