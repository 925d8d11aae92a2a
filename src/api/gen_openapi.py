#!/usr/bin/env python3
"""Generates openapi.c (the OpenAPI document served at /openapi.json) from the description below.
Run after changing an endpoint:  python3 src/api/gen_openapi.py"""
import json
import os

def p(name, where, desc, schema=None, required=False):
    return {"name": name, "in": where, "required": required or where == "path", "description": desc,
            "schema": schema or {"type": "string"}}

ERR = {"description": "bad request: the JSON error says what was wrong",
       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
def ok(desc, ref=None):
    r = {"description": desc}
    if ref:
        r["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/" + ref}}}
    return r

ID = p("id", "path", "device id (the device_id partition key column)")
TABLE = p("table", "query", "device table, as keyspace.table or table (default: every device table)")
FROM = p("from", "query", "start, inclusive: ISO-8601 or epoch milliseconds (default: to - api.default_range_ms, 1h)")
TO = p("to", "query", "end, exclusive: ISO-8601 or epoch milliseconds (default: now)")
FIELDS = p("fields", "query", "comma-separated columns to return (keys always come along)")
LIMIT = p("limit", "query", "rows per page, 1..api.max_limit (default api.default_limit = 100, max 5000)",
          {"type": "integer", "minimum": 1, "maximum": 5000})
CURSOR = p("cursor", "query", "next_cursor of the previous page, unchanged (with the same other parameters)")
KS = p("keyspace", "path", "keyspace")
TB = p("table", "path", "table")
errs = {"400": ERR, "401": dict(ERR, description="api.tokens is set and the request has no valid bearer token "
                                    "(WWW-Authenticate: Bearer realm=\"sluice\", error=\"invalid_token\" when one was sent)"),
        "404": dict(ERR, description="unknown device, table or endpoint"),
        "503": dict(ERR, description="the store is unreachable or the server is stopping"),
        "504": dict(ERR, description="the store did not answer in time")}

# Who may call what when api.tokens is set: the header everywhere, the query parameter on live streams only
# (EventSource cannot send headers), nothing on the probes load balancers use.
BEARER = [{"bearer": []}]
LIVE_AUTH = [{"bearer": []}, {"access_token": []}]
OPEN = []


def get(summary, params, responses, desc="", security=None):
    r = {"200": responses}
    r.update(errs)
    if security == OPEN:
        del r["401"]
    op = {"summary": summary, "description": desc, "parameters": params, "responses": r}
    if security is not None:
        op["security"] = security
    return {"get": op}

paths = {
    "/api/v1/devices": get("Devices with last-seen time and latest values", [TABLE], ok("devices", "DeviceList"),
        "Every device of the device tables (tables keyed ((device_id text, day date), ts timestamp)), sorted by id."),
    "/api/v1/devices/{id}": get("A device's latest reading (same as /latest)", [ID, TABLE, FIELDS], ok("latest", "Latest")),
    "/api/v1/devices/{id}/latest": get("A device's latest reading", [ID, TABLE, FIELDS], ok("latest", "Latest"),
        "Searches the day partitions from today back api.lookback_days (7)."),
    "/api/v1/devices/{id}/readings": get("A device's readings in a time range, paginated",
        [ID, TABLE, FROM, TO, FIELDS, LIMIT, CURSOR,
         p("order", "query", "desc (newest first, default) or asc", {"type": "string", "enum": ["desc", "asc"]})],
        ok("a page", "Readings"),
        "Reads only the (device_id, day) partitions the range covers. to - from <= api.max_range_ms (31 days). "
        "next_cursor is null on the last page."),
    "/api/v1/devices/{id}/aggregate": get("A device's readings aggregated by interval",
        [ID, TABLE, FROM, TO, p("interval", "query", "bucket width", {"type": "string", "enum": ["1m", "1h", "1d"]}),
         p("agg", "query", "aggregate", {"type": "string", "enum": ["avg", "min", "max", "sum", "count"]}),
         p("fields", "query", "numeric columns (default: every numeric value column)")],
        ok("buckets", "Aggregate"),
        "Computed over the stored rows of the partitions the range covers. Buckets are aligned to UTC multiples "
        "of the interval; only non-empty buckets are listed. Limits: to - from <= api.max_agg_range_ms (31 days), "
        "at most api.max_buckets (10000) intervals, at most api.max_scan_rows (2,000,000) rows read (413)."),
    "/api/v1/tables": get("The pipelines' tables with their columns", [], ok("tables")),
    "/api/v1/tables/{keyspace}/{table}": get("One table", [KS, TB], ok("table", "Table")),
    "/api/v1/tables/{keyspace}/{table}/rows": get("Rows by partition key (or the whole table, page by page)",
        [KS, TB, p("<partition key column>", "query", "one parameter per partition key column (all or none)"),
         p("from", "query", "range on the first clustering column (timestamp), inclusive; needs the key"),
         p("to", "query", "range end, exclusive"), FIELDS, LIMIT, CURSOR], ok("rows", "Rows")),
    "/api/v1/pipelines": get("Pipeline status and counters (consumed, written, dead-lettered, filtered, lag per partition)",
        [], ok("pipelines"), "Read from sluice_meta.pipeline_processors and sluice_meta.pipeline_lag, written by the stream processors. "
        "Each pipeline lists its processors (one row per `sluice stream` process, state running, stopped or "
        "unresponsive); its counters are the sum over the running ones, or the last one's when none runs."),
    "/api/v1/pipelines/{name}/dead-letters": get("A pipeline's dead-letter records with their reasons, newest first",
        [p("name", "path", "pipeline"), LIMIT], ok("dead letters")),
    "/api/v1/live/devices/{id}": get("Server-Sent Events: new readings of one device", [ID, TABLE],
        {"description": "text/event-stream; `event: reading` with {device_id, table, reading}; `event: dropped` "
                        "with {dropped} when readings were coalesced for a slow client",
         "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        "The latest reading first, then each new one (polled every api.live_poll_ms). At most api.live_max_pending "
        "events are held for a slow client; at most api.live_max_clients streams (429).", LIVE_AUTH),
    "/api/v1/live/tables/{keyspace}/{table}": get("Server-Sent Events: newest reading of every device of a device table",
        [KS, TB], {"description": "text/event-stream; coalesced to the newest reading per device",
                   "content": {"text/event-stream": {"schema": {"type": "string"}}}}, security=LIVE_AUTH),
    "/metrics": get("Prometheus metrics (text format 0.0.4)", [], {"description": "metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}}}),
    "/health": get("Liveness (never needs a token)", [], ok("serving"), security=OPEN),
    "/ready": get("Readiness: 200 once connected to the store, 503 otherwise (never needs a token)", [], ok("ready"),
                  security=OPEN),
    "/openapi.json": get("This document", [], ok("OpenAPI 3.0 document")),
}
obj = {"type": "object"}
doc = {
    "openapi": "3.0.3",
    "info": {"title": "Sluice API", "version": "1",
             "description": "Stateless REST API over the pipelines' tables. Timestamps are ISO-8601 UTC with "
                            "milliseconds; numbers are JSON numbers; uuids are strings. Errors are "
                            "{\"error\": {\"code\", \"message\"}} with a 4xx or 5xx status. When api.tokens "
                            "(or api.tokens_file) is set, every endpoint but /health and /ready needs "
                            "`Authorization: Bearer <token>`; live streams also take `?access_token=<token>`. "
                            "With api.tls_cert_file and api.tls_key_file the API is served over HTTPS only."},
    "paths": paths,
    "security": BEARER,
    "components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer",
                   "description": "one of the tokens of api.tokens / api.tokens_file (only when one is set)"},
        "access_token": {"type": "apiKey", "in": "query", "name": "access_token",
                         "description": "the same token as a query parameter, on live streams only"},
    }, "schemas": {
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}}}}},
        "DeviceList": {"type": "object", "properties": {"count": {"type": "integer"}, "devices": {"type": "array", "items": obj}}},
        "Latest": {"type": "object", "properties": {"device_id": {"type": "string"}, "table": {"type": "string"},
                   "last_seen": {"type": "string", "format": "date-time"}, "reading": obj}},
        "Readings": {"type": "object", "properties": {"count": {"type": "integer"}, "readings": {"type": "array", "items": obj},
                     "next_cursor": {"type": "string", "nullable": True}}},
        "Aggregate": {"type": "object", "properties": {"interval": {"type": "string"}, "agg": {"type": "string"},
                      "rows": {"type": "integer"}, "buckets": {"type": "array", "items": {"type": "object", "properties": {
                          "ts": {"type": "string"}, "count": {"type": "integer"}, "values": obj}}}}},
        "Table": obj, "Rows": {"type": "object", "properties": {"rows": {"type": "array", "items": obj},
                               "next_cursor": {"type": "string", "nullable": True}}},
    }},
}
text = json.dumps(doc, separators=(",", ":"))
c = ("/* generated by gen_openapi.py; do not edit */\nconst char sl_api_openapi_json[] =\n")
for i in range(0, len(text), 100):
    c += "    %s\n" % json.dumps(text[i:i + 100])
c += "    ;\n"
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "openapi.c"), "w") as f:
    f.write(c)
