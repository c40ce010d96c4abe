"""Teaches schemathesis the NDJSON request body of BulkSubmitReports: each generated item is
sent as one line, the way an agency's batch job streams its reports."""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)
