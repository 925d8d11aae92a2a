/* Record -> typed row (see pipeline.h for the declaration, coerce.h for the coercion rules).
 *
 * Order for each column: its path (when present and not null), else its template, else its derivation, else its
 * default, else missing (an error when required). Derived day() columns are computed after the others. Filters
 * run on the typed row. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stream/coerce.h"
#include "stream/json_scan.h"
#include "stream/pipeline.h"

/* A looked-up value: decoded by the single-pass scanner (json_scan.h), or a jansson node (j set). */
typedef struct {
  sl_jv_t v;
  json_t *j;
} val_t;

/* Where values come from: jansson's tree (root), or the scanner's values by slot (jv, plan). */
typedef struct {
  json_t *root;
  const sl_jv_t *jv;
} src_t;

enum { MAP_FALLBACK = -2 }; /* the fast path cannot tell: map again with jansson */

struct sl_map_plan {
  sl_jpaths_t *paths;
  int *col_slot;     /* per column: its path's slot, -1 none */
  int *tmpl_slot;    /* per template path part, columns in order */
  size_t *tmpl_base; /* per column: its first entry in tmpl_slot */
};

static void from_json(json_t *j, val_t *out) {
  out->j = j;
  out->v.s = NULL;
  out->v.len = 0;
  switch (json_typeof(j)) {
    case JSON_OBJECT: out->v.kind = SL_JV_OBJECT; break;
    case JSON_ARRAY: out->v.kind = SL_JV_ARRAY; break;
    case JSON_STRING:
      out->v.kind = SL_JV_STRING;
      out->v.s = json_string_value(j);
      out->v.len = json_string_length(j);
      break;
    case JSON_INTEGER:
      out->v.kind = SL_JV_INT;
      out->v.i = json_integer_value(j);
      break;
    case JSON_REAL:
      out->v.kind = SL_JV_REAL;
      out->v.d = json_real_value(j);
      break;
    case JSON_TRUE: out->v.kind = SL_JV_TRUE; break;
    case JSON_FALSE: out->v.kind = SL_JV_FALSE; break;
    case JSON_NULL: out->v.kind = SL_JV_NULL; break;
  }
}

/* The value at a path; false when absent or null. */
static bool lookup(const src_t *src, const sl_path_t *path, int slot, val_t *out) {
  if (src->jv) {
    if (src->jv[slot].kind == SL_JV_ABSENT || src->jv[slot].kind == SL_JV_NULL) return false;
    out->v = src->jv[slot];
    out->j = NULL;
    return true;
  }
  json_t *cur = src->root;
  for (size_t i = 0; cur && i < path->nsteps; i++) {
    const struct sl_path_step *st = &path->steps[i];
    cur = st->key ? json_object_get(cur, st->key) : json_array_get(cur, st->index);
  }
  if (!cur || json_is_null(cur)) return false;
  from_json(cur, out);
  return true;
}

static void format_real(double d, char *out, size_t n) {
  snprintf(out, n, "%.15g", d);
  if (strtod(out, NULL) != d) snprintf(out, n, "%.17g", d);
}

/* A JSON value as text (strings as they are, numbers and booleans printed, objects/arrays as compact JSON). */
static void json_text(const val_t *v, sl_buf_t *out) {
  char tmp[64];
  switch (v->v.kind) {
    case SL_JV_STRING: sl_buf_put(out, v->v.s, v->v.len); break;
    case SL_JV_INT:
      snprintf(tmp, sizeof tmp, "%lld", (long long)v->v.i);
      sl_buf_put(out, tmp, strlen(tmp));
      break;
    case SL_JV_REAL:
      format_real(v->v.d, tmp, sizeof tmp);
      sl_buf_put(out, tmp, strlen(tmp));
      break;
    case SL_JV_TRUE: sl_buf_put(out, "true", 4); break;
    case SL_JV_FALSE: sl_buf_put(out, "false", 5); break;
    default: {
      char *s = v->j ? json_dumps(v->j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
      if (s) {
        sl_buf_put(out, s, strlen(s));
        free(s);
      }
    }
  }
}

static void set_err(sl_map_error_t *err, const char *field, const val_t *v, const char *str, const char *reason) {
  snprintf(err->field, sizeof err->field, "%s", field);
  if (v) {
    sl_buf_t b;
    sl_buf_init(&b);
    json_text(v, &b);
    snprintf(err->value, sizeof err->value, "%.*s", (int)(b.len < 255 ? b.len : 255), b.data ? (char *)b.data : "");
    sl_buf_free(&b);
  } else {
    snprintf(err->value, sizeof err->value, "%s", str ? str : "");
  }
  snprintf(err->reason, sizeof err->reason, "%s", reason);
}

static int int_range(sl_col_type_t t, int64_t v) {
  if (t == SL_COL_INT && (v < INT32_MIN || v > INT32_MAX)) return -ERANGE;
  return 0;
}

/* Coerces a text value (a JSON string, or a default) to the column's type. */
static int coerce_text(const sl_column_t *col, const char *s, size_t len, sl_value_t *out, sl_buf_t *text,
                       const char **reason) {
  switch (col->type) {
    case SL_COL_TEXT:
      out->v.s.off = (uint32_t)text->len;
      out->v.s.len = (uint32_t)len;
      sl_buf_put(text, s, len);
      break;
    case SL_COL_INT:
    case SL_COL_BIGINT:
      if (sl_coerce_parse_int(s, len, &out->v.i) != 0) return *reason = "not an integer", -EINVAL;
      if (int_range(col->type, out->v.i)) return *reason = "out of range for int", -ERANGE;
      break;
    case SL_COL_DOUBLE:
    case SL_COL_FLOAT:
      if (sl_coerce_parse_real(s, len, &out->v.d) != 0) return *reason = "not a number", -EINVAL;
      break;
    case SL_COL_BOOLEAN:
      if (sl_coerce_parse_bool(s, len, &out->v.b) != 0) return *reason = "not a boolean", -EINVAL;
      break;
    case SL_COL_TIMESTAMP:
    case SL_COL_DATE: {
      int64_t ms, n;
      if (sl_coerce_parse_int(s, len, &n) == 0 && len >= 9)
        ms = sl_coerce_epoch_int(n);
      else if (sl_coerce_iso8601(s, len, &ms) != 0)
        return *reason = "not an ISO-8601 or epoch timestamp", -EINVAL;
      out->v.i = col->type == SL_COL_DATE ? sl_coerce_day(ms) : ms;
      break;
    }
    case SL_COL_UUID:
      if (sl_coerce_parse_uuid(s, len, out->v.uuid) != 0) return *reason = "not a uuid", -EINVAL;
      break;
  }
  out->set = true;
  return 0;
}

static int coerce_json(const sl_column_t *col, const val_t *jv, sl_value_t *out, sl_buf_t *text,
                       const char **reason) {
  const sl_jv_t *v = &jv->v;
  if (v->kind == SL_JV_STRING) return coerce_text(col, v->s, v->len, out, text, reason);
  bool is_int = v->kind == SL_JV_INT, is_real = v->kind == SL_JV_REAL;
  bool is_bool = v->kind == SL_JV_TRUE || v->kind == SL_JV_FALSE;
  switch (col->type) {
    case SL_COL_TEXT: {
      out->v.s.off = (uint32_t)text->len;
      json_text(jv, text);
      out->v.s.len = (uint32_t)(text->len - out->v.s.off);
      break;
    }
    case SL_COL_INT:
    case SL_COL_BIGINT:
      if (is_int) {
        out->v.i = v->i;
      } else if (is_real && v->d == floor(v->d) && fabs(v->d) < 9.2e18) {
        out->v.i = (int64_t)v->d;
      } else if (is_bool) {
        out->v.i = v->kind == SL_JV_TRUE;
      } else {
        return *reason = is_real ? "not an integer" : "expected a number", -EINVAL;
      }
      if (int_range(col->type, out->v.i)) return *reason = "out of range for int", -ERANGE;
      break;
    case SL_COL_DOUBLE:
    case SL_COL_FLOAT:
      if (!is_int && !is_real) return *reason = "expected a number", -EINVAL;
      out->v.d = is_int ? (double)v->i : v->d;
      break;
    case SL_COL_BOOLEAN:
      if (is_bool)
        out->v.b = v->kind == SL_JV_TRUE;
      else if (is_int && (v->i == 0 || v->i == 1))
        out->v.b = v->i == 1;
      else
        return *reason = "expected a boolean", -EINVAL;
      break;
    case SL_COL_TIMESTAMP:
    case SL_COL_DATE: {
      int64_t ms;
      if (is_int)
        ms = sl_coerce_epoch_int(v->i);
      else if (!is_real || sl_coerce_epoch_real(v->d, &ms) != 0)
        return *reason = "expected an ISO-8601 string or an epoch number", -EINVAL;
      out->v.i = col->type == SL_COL_DATE ? sl_coerce_day(ms) : ms;
      break;
    }
    case SL_COL_UUID: return *reason = "expected a uuid string", -EINVAL;
  }
  out->set = true;
  return 0;
}

static bool filter_pass(const sl_pipeline_t *p, const sl_filter_t *f, const sl_value_t *vals, const sl_buf_t *text) {
  const sl_column_t *col = &p->cols[f->column];
  const sl_value_t *v = &vals[f->column];
  if (f->op == SL_OP_EXISTS) return v->set;
  if (f->op == SL_OP_MISSING) return !v->set;
  if (!v->set) return false;
  int cmp;
  switch (col->type) {
    case SL_COL_TEXT: {
      size_t n = strlen(f->value);
      size_t m = v->v.s.len < n ? v->v.s.len : n;
      cmp = memcmp(text->data + v->v.s.off, f->value, m);
      if (cmp == 0) cmp = v->v.s.len < n ? -1 : v->v.s.len > n ? 1 : 0;
      break;
    }
    case SL_COL_DOUBLE:
    case SL_COL_FLOAT:
    case SL_COL_INT:
    case SL_COL_BIGINT:
    case SL_COL_TIMESTAMP:
    case SL_COL_DATE: {
      if (!f->is_num) return false;
      double x = (col->type == SL_COL_DOUBLE || col->type == SL_COL_FLOAT) ? v->v.d : (double)v->v.i;
      cmp = x < f->num ? -1 : x > f->num ? 1 : 0;
      break;
    }
    case SL_COL_BOOLEAN: {
      bool b;
      if (sl_coerce_parse_bool(f->value, strlen(f->value), &b) != 0) return false;
      cmp = v->v.b == b ? 0 : 1;
      if (f->op != SL_OP_EQ && f->op != SL_OP_NE) return false;
      break;
    }
    default: return false;
  }
  switch (f->op) {
    case SL_OP_EQ: return cmp == 0;
    case SL_OP_NE: return cmp != 0;
    case SL_OP_LT: return cmp < 0;
    case SL_OP_LE: return cmp <= 0;
    case SL_OP_GT: return cmp > 0;
    case SL_OP_GE: return cmp >= 0;
    default: return false;
  }
}

/* Maps a decoded record (see the order in the header comment). With the scanner's values (src->jv), returns
 * MAP_FALLBACK where only jansson can tell the outcome or word the error: an object or array value, any error. */
static int map_core(const sl_pipeline_t *p, const src_t *from, const char *topic, int32_t partition, int64_t offset,
                    sl_value_t *vals, sl_buf_t *text, sl_map_error_t *err) {
  const struct sl_map_plan *plan = p->plan;
  const bool fast = from->jv != NULL;
  memset(vals, 0, p->ncols * sizeof *vals);
  int rc = SL_MAP_ROW;
  for (size_t i = 0; i < p->ncols && rc == SL_MAP_ROW; i++) {
    const sl_column_t *col = &p->cols[i];
    const char *reason = NULL;
    if (col->derive == SL_DERIVE_DAY) continue; /* after the others */
    val_t v;
    if (col->has_path && lookup(from, &col->path, fast ? plan->col_slot[i] : -1, &v)) {
      if (fast && (v.v.kind == SL_JV_OBJECT || v.v.kind == SL_JV_ARRAY)) return MAP_FALLBACK;
      if (coerce_json(col, &v, &vals[i], text, &reason) != 0) {
        if (fast) return MAP_FALLBACK;
        char why[256];
        snprintf(why, sizeof why, "cannot convert to %s: %s", sl_col_type_name(col->type), reason);
        set_err(err, col->name, &v, NULL, why);
        rc = SL_MAP_ERROR;
      }
      continue;
    }
    if (col->ntmpl) {
      size_t start = text->len;
      bool complete = true;
      for (size_t t = 0; t < col->ntmpl && complete; t++) {
        if (col->tmpl[t].literal) {
          sl_buf_put(text, col->tmpl[t].literal, strlen(col->tmpl[t].literal));
        } else {
          val_t part;
          if (lookup(from, &col->tmpl[t].path, fast ? plan->tmpl_slot[plan->tmpl_base[i] + t] : -1, &part)) {
            if (fast && (part.v.kind == SL_JV_OBJECT || part.v.kind == SL_JV_ARRAY)) return MAP_FALLBACK;
            json_text(&part, text);
          } else {
            complete = false;
          }
        }
      }
      if (complete) {
        vals[i].set = true;
        vals[i].v.s.off = (uint32_t)start;
        vals[i].v.s.len = (uint32_t)(text->len - start);
        continue;
      }
      text->len = start;
    }
    if (col->derive == SL_DERIVE_RECORD_UUID) {
      sl_coerce_record_uuid(topic, partition, offset, vals[i].v.uuid);
      vals[i].set = true;
      continue;
    }
    if (col->default_value) {
      if (coerce_text(col, col->default_value, strlen(col->default_value), &vals[i], text, &reason) != 0) {
        set_err(err, col->name, NULL, col->default_value, "the default does not fit the column");
        rc = SL_MAP_ERROR;
      }
      continue;
    }
    if (col->required) {
      set_err(err, col->name, NULL, "", col->has_path ? "missing required field" : "missing required value");
      if (col->has_path) snprintf(err->value, sizeof err->value, "(path %s absent)", col->path.text);
      rc = SL_MAP_ERROR;
    }
  }
  for (size_t i = 0; i < p->ncols && rc == SL_MAP_ROW; i++) {
    const sl_column_t *col = &p->cols[i];
    if (col->derive != SL_DERIVE_DAY) continue;
    const sl_value_t *src = &vals[col->derive_src];
    if (!src->set) {
      if (col->required) {
        set_err(err, col->name, NULL, "", "cannot derive: source column has no value");
        rc = SL_MAP_ERROR;
      }
      continue;
    }
    int32_t day = p->cols[col->derive_src].type == SL_COL_DATE ? (int32_t)src->v.i : sl_coerce_day(src->v.i);
    vals[i].set = true;
    if (col->type == SL_COL_DATE) {
      vals[i].v.i = day;
    } else {
      char iso[40];
      int64_t ms = (int64_t)day * 86400000;
      time_t secs = (time_t)(ms / 1000);
      struct tm tm;
      gmtime_r(&secs, &tm);
      snprintf(iso, sizeof iso, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
      vals[i].v.s.off = (uint32_t)text->len;
      vals[i].v.s.len = (uint32_t)strlen(iso);
      sl_buf_put(text, iso, strlen(iso));
    }
  }
  if (rc != SL_MAP_ROW) return fast ? MAP_FALLBACK : rc;
  for (size_t f = 0; f < p->nfilters; f++) {
    if (!filter_pass(p, &p->filters[f], vals, text)) return SL_MAP_FILTERED;
  }
  return SL_MAP_ROW;
}

static int map_jansson(const sl_pipeline_t *p, const void *payload, size_t len, const char *topic, int32_t partition,
                       int64_t offset, sl_value_t *vals, sl_buf_t *text, sl_map_error_t *err) {
  json_error_t jerr;
  json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
  memset(vals, 0, p->ncols * sizeof *vals);
  if (!root) {
    char reason[256];
    snprintf(reason, sizeof reason, "invalid JSON at byte %d: %s", jerr.position, jerr.text);
    snprintf(err->field, sizeof err->field, "%s", "");
    size_t n = len < 255 ? len : 255;
    memcpy(err->value, payload, n);
    err->value[n] = 0;
    snprintf(err->reason, sizeof err->reason, "%s", reason);
    return SL_MAP_ERROR;
  }
  if (!json_is_object(root)) {
    val_t v;
    from_json(root, &v);
    set_err(err, "", &v, NULL, "expected a JSON object");
    json_decref(root);
    return SL_MAP_ERROR;
  }
  src_t src = {root, NULL};
  int rc = map_core(p, &src, topic, partition, offset, vals, text, err);
  json_decref(root);
  return rc;
}

int sl_pipeline_map_reference(const sl_pipeline_t *p, const void *payload, size_t len, const char *topic,
                              int32_t partition, int64_t offset, sl_value_t *vals, sl_buf_t *text,
                              sl_map_error_t *err) {
  return map_jansson(p, payload, len, topic, partition, offset, vals, text, err);
}

int sl_pipeline_map(const sl_pipeline_t *p, const void *payload, size_t len, const char *topic, int32_t partition,
                    int64_t offset, sl_value_t *vals, sl_buf_t *text, sl_map_error_t *err) {
  const struct sl_map_plan *plan = p->plan;
  if (plan) {
    sl_jv_t jv[SL_JSCAN_MAX_SLOTS];
    char scratch[2048];
    if (sl_json_scan(plan->paths, payload, len, jv, scratch, sizeof scratch) == SL_JSCAN_OK) {
      size_t start = text->len;
      src_t src = {NULL, jv};
      int rc = map_core(p, &src, topic, partition, offset, vals, text, err);
      if (rc != MAP_FALLBACK) return rc;
      text->len = start;
    }
  }
  return map_jansson(p, payload, len, topic, partition, offset, vals, text, err);
}

struct sl_map_plan *sl_map_plan_new(const sl_pipeline_t *p) {
  struct sl_map_plan *plan = calloc(1, sizeof *plan);
  if (!plan) abort();
  plan->paths = sl_jpaths_new();
  size_t ntmpl = 0;
  for (size_t i = 0; i < p->ncols; i++) ntmpl += p->cols[i].ntmpl;
  plan->col_slot = malloc((p->ncols + 1) * sizeof *plan->col_slot);
  plan->tmpl_base = malloc((p->ncols + 1) * sizeof *plan->tmpl_base);
  plan->tmpl_slot = malloc((ntmpl + 1) * sizeof *plan->tmpl_slot);
  if (!plan->col_slot || !plan->tmpl_base || !plan->tmpl_slot) abort();
  size_t k = 0;
  bool ok = true;
  for (size_t i = 0; i < p->ncols && ok; i++) {
    const sl_column_t *col = &p->cols[i];
    plan->col_slot[i] = col->has_path ? sl_jpaths_add(plan->paths, &col->path) : -1;
    if (col->has_path && plan->col_slot[i] < 0) ok = false;
    plan->tmpl_base[i] = k;
    for (size_t t = 0; t < col->ntmpl; t++, k++) {
      plan->tmpl_slot[k] = col->tmpl[t].literal ? -1 : sl_jpaths_add(plan->paths, &col->tmpl[t].path);
      if (!col->tmpl[t].literal && plan->tmpl_slot[k] < 0) ok = false;
    }
  }
  if (!ok) {
    sl_map_plan_free(plan);
    return NULL;
  }
  return plan;
}

const sl_jpaths_t *sl_map_plan_paths(const struct sl_map_plan *plan) { return plan->paths; }

void sl_map_plan_free(struct sl_map_plan *plan) {
  if (!plan) return;
  sl_jpaths_free(plan->paths);
  free(plan->col_slot);
  free(plan->tmpl_slot);
  free(plan->tmpl_base);
  free(plan);
}
