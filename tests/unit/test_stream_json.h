/* Shared by tests/unit/test_stream_json.c and tests/fuzz/fuzz_stream_json.c: a pipeline using every column type,
 * nested and array paths, templates, defaults and derivations, and the oracle check (the single-pass decoder
 * through sl_pipeline_map must agree with jansson through sl_pipeline_map_reference). */
#ifndef SL_TEST_STREAM_JSON_H
#define SL_TEST_STREAM_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "stream/json_scan.h"
#include "stream/pipeline.h"

static const char *const sj_yaml =
    "pipelines:\n"
    "  - name: t\n"
    "    topics: [in]\n"
    "    keyspace: ks\n"
    "    table: tb\n"
    "    columns:\n"
    "      - {name: dev, type: text, path: a.id, required: true}\n"
    "      - {name: day, type: date, derive: day(ts)}\n"
    "      - {name: ts, type: timestamp, path: ts}\n"
    "      - {name: n, type: int, path: \"arr[1].n\"}\n"
    "      - {name: big, type: bigint, path: big}\n"
    "      - {name: x, type: double, path: x, default: \"1.5\"}\n"
    "      - {name: f, type: float, path: \"a.f\"}\n"
    "      - {name: ok, type: boolean, path: ok}\n"
    "      - {name: id, type: uuid, path: id, derive: record_uuid}\n"
    "      - {name: s, type: text, path: s}\n"
    "      - {name: t0, type: text, path: \"arr[0]\"}\n"
    "      - {name: d2, type: date, path: d2}\n"
    "      - {name: label, type: text, template: \"{a.id}-{s}/{x}\"}\n"
    "    primary_key: [[dev, day], ts]\n"
    "    clustering_order: {ts: desc}\n"
    "    filters:\n"
    "      - {column: x, op: \">=\", value: 0}\n";

enum { SJ_MAXCOLS = 64 };

/* Returns NULL when both agree, else a description of the first difference. */
static const char *sj_compare(const sl_pipeline_t *p, const void *doc, size_t len, int *rc_out) {
  static char why[512];
  sl_value_t v1[SJ_MAXCOLS], v2[SJ_MAXCOLS];
  if (p->ncols > SJ_MAXCOLS) return "too many columns for the test";
  sl_buf_t t1, t2;
  sl_buf_init(&t1);
  sl_buf_init(&t2);
  sl_map_error_t e1, e2;
  memset(&e1, 0, sizeof e1);
  memset(&e2, 0, sizeof e2);
  int r1 = sl_pipeline_map(p, doc, len, "in", 3, 77, v1, &t1, &e1);
  int r2 = sl_pipeline_map_reference(p, doc, len, "in", 3, 77, v2, &t2, &e2);
  const char *res = NULL;
  if (rc_out) *rc_out = r1;
  if (r1 != r2) {
    snprintf(why, sizeof why, "rc %d vs %d", r1, r2);
    res = why;
  } else if (r1 == SL_MAP_ERROR) {
    if (strcmp(e1.field, e2.field) || strcmp(e1.value, e2.value) || strcmp(e1.reason, e2.reason)) {
      snprintf(why, sizeof why, "error %.40s/%.80s vs %.40s/%.80s", e1.field, e1.reason, e2.field, e2.reason);
      res = why;
    }
  } else {
    for (size_t c = 0; c < p->ncols && !res; c++) {
      bool same = v1[c].set == v2[c].set;
      if (same && v1[c].set) {
        switch (p->cols[c].type) {
          case SL_COL_TEXT:
            same = v1[c].v.s.len == v2[c].v.s.len &&
                   memcmp(t1.data + v1[c].v.s.off, t2.data + v2[c].v.s.off, v1[c].v.s.len) == 0;
            break;
          case SL_COL_DOUBLE:
          case SL_COL_FLOAT: same = memcmp(&v1[c].v.d, &v2[c].v.d, sizeof(double)) == 0; break;
          case SL_COL_BOOLEAN: same = v1[c].v.b == v2[c].v.b; break;
          case SL_COL_UUID: same = memcmp(v1[c].v.uuid, v2[c].v.uuid, 16) == 0; break;
          default: same = v1[c].v.i == v2[c].v.i;
        }
      }
      if (!same) {
        snprintf(why, sizeof why, "column %s differs", p->cols[c].name);
        res = why;
      }
    }
  }
  sl_buf_free(&t1);
  sl_buf_free(&t2);
  return res;
}

/* The scanner alone: when it accepts, jansson must accept the same document as an object. */
static bool sj_scan_sound(const sl_pipeline_t *p, const void *doc, size_t len, int *scan_rc) {
  sl_jv_t jv[SL_JSCAN_MAX_SLOTS];
  char scratch[2048];
  int rc = p->plan ? sl_json_scan(sl_map_plan_paths(p->plan), doc, len, jv, scratch, sizeof scratch)
                   : SL_JSCAN_UNSURE;
  if (scan_rc) *scan_rc = rc;
  if (rc != SL_JSCAN_OK) return true;
  json_error_t err;
  json_t *root = json_loadb(doc, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
  bool ok = root && json_is_object(root);
  json_decref(root);
  return ok;
}

#endif
