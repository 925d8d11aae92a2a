/* Pipeline declarations: YAML -> sl_pipeline_t, and the CQL they imply (see pipeline.h).
 *
 * The YAML is first turned into a jansson tree (every scalar a string), then read with explicit checks, so every
 * mistake gets a message naming the pipeline and the field. */
#include "stream/pipeline.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "stream/coerce.h"

static const char *const type_names[] = {"text", "int", "bigint", "double", "float",
                                         "boolean", "timestamp", "date", "uuid"};
const char *sl_col_type_name(sl_col_type_t t) { return type_names[t]; }

static char *xstrdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) abort();
  return d;
}

/* ------------------------------------------------------------------------------------------ YAML -> jansson */
static json_t *yaml_node(yaml_parser_t *ps, yaml_event_t *ev, int depth, char *err, size_t errlen);

static json_t *yaml_children(yaml_parser_t *ps, bool mapping, int depth, char *err, size_t errlen) {
  json_t *c = mapping ? json_object() : json_array();
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(ps, &ev)) {
      snprintf(err, errlen, "line %zu: %s", ps->problem_mark.line + 1, ps->problem ? ps->problem : "YAML error");
      json_decref(c);
      return NULL;
    }
    if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      return c;
    }
    if (mapping) {
      if (ev.type != YAML_SCALAR_EVENT) {
        snprintf(err, errlen, "line %zu: keys must be plain scalars", ev.start_mark.line + 1);
        yaml_event_delete(&ev);
        json_decref(c);
        return NULL;
      }
      char *key = xstrdup((const char *)ev.data.scalar.value);
      yaml_event_delete(&ev);
      yaml_event_t vev;
      if (!yaml_parser_parse(ps, &vev)) {
        snprintf(err, errlen, "line %zu: %s", ps->problem_mark.line + 1, ps->problem ? ps->problem : "YAML error");
        free(key);
        json_decref(c);
        return NULL;
      }
      json_t *v = yaml_node(ps, &vev, depth + 1, err, errlen);
      if (!v) {
        free(key);
        json_decref(c);
        return NULL;
      }
      json_object_set_new(c, key, v);
      free(key);
    } else {
      json_t *v = yaml_node(ps, &ev, depth + 1, err, errlen);
      if (!v) {
        json_decref(c);
        return NULL;
      }
      json_array_append_new(c, v);
    }
  }
}

/* Consumes ev (and the events of its children). */
static json_t *yaml_node(yaml_parser_t *ps, yaml_event_t *ev, int depth, char *err, size_t errlen) {
  json_t *r = NULL;
  if (depth > 32) {
    snprintf(err, errlen, "nesting too deep");
  } else if (ev->type == YAML_SCALAR_EVENT) {
    r = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
    if (!r) snprintf(err, errlen, "line %zu: invalid UTF-8", ev->start_mark.line + 1);
  } else if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT) {
    bool mapping = ev->type == YAML_MAPPING_START_EVENT;
    yaml_event_delete(ev);
    return yaml_children(ps, mapping, depth, err, errlen);
  } else {
    snprintf(err, errlen, "line %zu: unsupported YAML (anchors/aliases)", ev->start_mark.line + 1);
  }
  yaml_event_delete(ev);
  return r;
}

static json_t *yaml_to_json(const char *text, size_t len, char *err, size_t errlen) {
  yaml_parser_t ps;
  yaml_parser_initialize(&ps);
  yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
  json_t *root = NULL;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&ps, &ev)) {
      snprintf(err, errlen, "line %zu: %s", ps.problem_mark.line + 1, ps.problem ? ps.problem : "YAML error");
      break;
    }
    yaml_event_type_t t = ev.type;
    if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT || t == YAML_SCALAR_EVENT) {
      root = yaml_node(&ps, &ev, 0, err, errlen);
      break;
    }
    yaml_event_delete(&ev);
    if (t == YAML_STREAM_END_EVENT) {
      snprintf(err, errlen, "empty document");
      break;
    }
  }
  yaml_parser_delete(&ps);
  return root;
}

/* ------------------------------------------------------------------------------------------------ paths */
static int parse_path(const char *text, sl_path_t *out) {
  memset(out, 0, sizeof *out);
  out->text = xstrdup(text);
  const char *p = text;
  if (p[0] == '$') p += p[1] == '.' ? 2 : 1;
  size_t cap = 0;
  while (*p) {
    if (out->nsteps == cap) {
      cap = cap ? cap * 2 : 4;
      out->steps = realloc(out->steps, cap * sizeof *out->steps);
      if (!out->steps) abort();
    }
    struct sl_path_step *st = &out->steps[out->nsteps];
    if (*p == '[') {
      char *end;
      unsigned long idx = strtoul(p + 1, &end, 10);
      if (end == p + 1 || *end != ']' || idx > 1000000) return -EINVAL;
      st->key = NULL;
      st->index = idx;
      out->nsteps++;
      p = end + 1;
      if (*p == '.') p++;
      continue;
    }
    size_t n = strcspn(p, ".[");
    if (n == 0) return -EINVAL;
    st->key = strndup(p, n);
    if (!st->key) abort();
    out->nsteps++;
    p += n;
    if (*p == '.') {
      p++;
      if (!*p) return -EINVAL;
    }
  }
  return out->nsteps ? 0 : -EINVAL;
}

static void free_path(sl_path_t *p) {
  for (size_t i = 0; i < p->nsteps; i++) free(p->steps[i].key);
  free(p->steps);
  free(p->text);
}

/* ----------------------------------------------------------------------------------------------- loader */
typedef struct {
  char *err;
  size_t errlen;
  const char *origin, *pipeline;
} ctx_t;

static int fail(ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ctx_t *c, const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(c->err, c->errlen, "%s: pipeline '%s': %s", c->origin, c->pipeline ? c->pipeline : "?", msg);
  return -EINVAL;
}

static const char *str_field(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int find_column(const sl_pipeline_t *p, const char *name, size_t *idx) {
  for (size_t i = 0; i < p->ncols; i++) {
    if (!strcmp(p->cols[i].name, name)) return *idx = i, 0;
  }
  return -ENOENT;
}

static bool valid_ident(const char *s) {
  if (!s || !*s || strlen(s) > 48) return false;
  for (const char *p = s; *p; p++) {
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || (*p >= 'A' && *p <= 'Z')))
      return false;
  }
  return !(s[0] >= '0' && s[0] <= '9');
}

static int parse_template(ctx_t *c, sl_column_t *col, const char *t) {
  const char *p = t;
  size_t cap = 0;
  while (*p) {
    if (col->ntmpl == cap) {
      cap = cap ? cap * 2 : 8;
      col->tmpl = realloc(col->tmpl, cap * sizeof *col->tmpl);
      if (!col->tmpl) abort();
    }
    sl_template_part_t *part = &col->tmpl[col->ntmpl];
    memset(part, 0, sizeof *part);
    if (*p == '{') {
      const char *end = strchr(p, '}');
      if (!end) return fail(c, "column '%s': unclosed '{' in template", col->name);
      char *path = strndup(p + 1, (size_t)(end - p - 1));
      int rc = parse_path(path, &part->path);
      free(path);
      col->ntmpl++;
      if (rc) return fail(c, "column '%s': bad path in template", col->name);
      p = end + 1;
    } else {
      size_t n = strcspn(p, "{");
      part->literal = strndup(p, n);
      col->ntmpl++;
      p += n;
    }
  }
  return 0;
}

static int parse_column(ctx_t *c, sl_pipeline_t *p, json_t *jc, sl_column_t *col) {
  const char *name = str_field(jc, "name"), *type = str_field(jc, "type");
  if (!json_is_object(jc) || !valid_ident(name)) return fail(c, "every column needs a valid name");
  col->name = xstrdup(name);
  for (size_t i = 0; col->name[i]; i++)
    if (col->name[i] >= 'A' && col->name[i] <= 'Z') col->name[i] = (char)(col->name[i] + 32);
  if (!type) return fail(c, "column '%s': missing type", name);
  bool found = false;
  for (size_t t = 0; t < sizeof type_names / sizeof type_names[0]; t++) {
    if (!strcasecmp(type, type_names[t])) col->type = (sl_col_type_t)t, found = true;
  }
  if (!strcasecmp(type, "varchar")) col->type = SL_COL_TEXT, found = true;
  if (!found) return fail(c, "column '%s': unsupported type '%s'", name, type);
  const char *path = str_field(jc, "path"), *req = str_field(jc, "required"), *def = str_field(jc, "default");
  const char *derive = str_field(jc, "derive"), *tmpl = str_field(jc, "template");
  const char *key;
  json_t *v;
  json_object_foreach(jc, key, v) {
    static const char *const known[] = {"name", "type", "path", "required", "default", "derive", "template"};
    bool ok = false;
    for (size_t i = 0; i < 7; i++) ok |= !strcmp(key, known[i]);
    if (!ok) return fail(c, "column '%s': unknown key '%s'", name, key);
  }
  if (path) {
    if (parse_path(path, &col->path) != 0) return fail(c, "column '%s': bad path '%s'", name, path);
    col->has_path = true;
  }
  if (req) {
    bool b;
    if (sl_coerce_parse_bool(req, strlen(req), &b) != 0) return fail(c, "column '%s': required must be true/false", name);
    col->required = b;
  }
  if (def) col->default_value = xstrdup(def);
  if (tmpl) {
    if (col->type != SL_COL_TEXT) return fail(c, "column '%s': templates make text columns", name);
    if (parse_template(c, col, tmpl) != 0) return -EINVAL;
  }
  if (derive) {
    if (!strcmp(derive, "record_uuid")) {
      if (col->type != SL_COL_UUID) return fail(c, "column '%s': record_uuid needs a uuid column", name);
      col->derive = SL_DERIVE_RECORD_UUID;
    } else if (!strncmp(derive, "day(", 4) && derive[strlen(derive) - 1] == ')') {
      col->derive_src_name = strndup(derive + 4, strlen(derive) - 5);
      if (col->type != SL_COL_DATE && col->type != SL_COL_TEXT)
        return fail(c, "column '%s': day() makes a date (or text) column", name);
      col->derive = SL_DERIVE_DAY;
    } else {
      return fail(c, "column '%s': unknown derivation '%s' (day(column), record_uuid)", name, derive);
    }
  }
  if (!col->has_path && !col->derive && !col->ntmpl && !col->default_value)
    return fail(c, "column '%s': needs a path, a template, a derivation or a default", name);
  return 0;
}

static int parse_key_list(ctx_t *c, sl_pipeline_t *p, json_t *list, size_t **out, size_t *n) {
  *out = calloc(json_array_size(list) + 1, sizeof **out);
  if (!*out) abort();
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    if (!json_is_string(v) || find_column(p, json_string_value(v), &(*out)[*n]) != 0)
      return fail(c, "primary_key names an unknown column");
    (*n)++;
  }
  return 0;
}

/* Columns come first; day(x) may refer to a later column, so columns are read in two passes. */
static void put_str(sl_buf_t *b, const char *s) { sl_buf_put(b, s, strlen(s)); }

/* `replication: {class: NetworkTopologyStrategy, datacenter1: 3}` as a CQL map literal; absent: SimpleStrategy
 * with one replica (a single Sluice store). Names and values are restricted to identifier characters, so the
 * literal cannot carry anything but a map. */
static bool replication_token(const char *s) {
  if (!s || !*s || strlen(s) > 120) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
          *s == '.' || *s == '-'))
      return false;
  return true;
}

static int parse_replication(ctx_t *c, json_t *rep, char **out) {
  if (!rep) {
    *out = xstrdup("{'class': 'SimpleStrategy', 'replication_factor': '1'}");
    return 0;
  }
  if (!json_is_object(rep) || !json_object_get(rep, "class"))
    return fail(c, "replication: a mapping with a class, e.g. {class: NetworkTopologyStrategy, datacenter1: 3}");
  sl_buf_t b;
  sl_buf_init(&b);
  put_str(&b, "{");
  const char *key;
  json_t *v;
  bool first = true;
  json_object_foreach(rep, key, v) {
    char num[32];
    const char *val = json_is_string(v) ? json_string_value(v) : NULL;
    if (json_is_integer(v)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), val = num;
    if (!replication_token(key) || !replication_token(val)) {
      sl_buf_free(&b);
      return fail(c, "replication: '%s' needs a plain name and value", key);
    }
    put_str(&b, first ? "'" : ", '");
    put_str(&b, key);
    put_str(&b, "': '");
    put_str(&b, val);
    put_str(&b, "'");
    first = false;
  }
  put_str(&b, "}");
  sl_buf_put_u8(&b, 0);
  *out = xstrdup((const char *)b.data);
  sl_buf_free(&b);
  return 0;
}

static int parse_pipeline(ctx_t *c, json_t *jp, sl_pipeline_t *p) {
  if (!json_is_object(jp)) return fail(c, "a pipeline is a mapping");
  const char *name = str_field(jp, "name");
  c->pipeline = name;
  if (!valid_ident(name) && !(name && *name)) return fail(c, "missing name");
  p->name = xstrdup(name);
  json_t *topics = json_object_get(jp, "topics");
  if (json_is_string(topics)) {
    p->topics = calloc(1, sizeof *p->topics);
    p->topics[p->ntopics++] = xstrdup(json_string_value(topics));
  } else if (json_is_array(topics) && json_array_size(topics)) {
    p->topics = calloc(json_array_size(topics), sizeof *p->topics);
    size_t i;
    json_t *t;
    json_array_foreach(topics, i, t) {
      if (!json_is_string(t)) return fail(c, "topics must be names");
      p->topics[p->ntopics++] = xstrdup(json_string_value(t));
    }
  } else {
    return fail(c, "missing topics");
  }
  char buf[300];
  const char *group = str_field(jp, "group");
  snprintf(buf, sizeof buf, "sluice-%s", p->name);
  p->group = xstrdup(group ? group : buf);
  const char *format = str_field(jp, "format");
  p->format = xstrdup(format ? format : "json");
  if (strcmp(p->format, "json")) return fail(c, "format '%s' is not supported yet (json)", p->format);
  const char *dlq = str_field(jp, "dead_letter");
  snprintf(buf, sizeof buf, "%s.dlq", p->topics[0]);
  p->dead_letter = xstrdup(dlq ? dlq : buf);
  const char *ks = str_field(jp, "keyspace"), *table = str_field(jp, "table");
  if (!valid_ident(ks) || !valid_ident(table)) return fail(c, "keyspace and table must be plain identifiers");
  p->keyspace = xstrdup(ks);
  p->table = xstrdup(table);
  if (parse_replication(c, json_object_get(jp, "replication"), &p->replication) != 0) return -EINVAL;
  const char *topts = str_field(jp, "table_options");
  if (topts && (strchr(topts, ';') || !topts[0])) return fail(c, "table_options: one CQL options clause, no ';'");
  p->table_options = topts ? xstrdup(topts) : NULL;
  for (char *q = p->keyspace; *q; q++) *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);
  for (char *q = p->table; *q; q++) *q = (char)(*q >= 'A' && *q <= 'Z' ? *q + 32 : *q);

  json_t *cols = json_object_get(jp, "columns");
  if (!json_is_array(cols) || !json_array_size(cols)) return fail(c, "missing columns");
  p->cols = calloc(json_array_size(cols), sizeof *p->cols);
  if (!p->cols) abort();
  size_t i;
  json_t *jc;
  json_array_foreach(cols, i, jc) {
    int rc = parse_column(c, p, jc, &p->cols[p->ncols]);
    p->ncols++;
    if (rc) return rc;
    for (size_t k = 0; k + 1 < p->ncols; k++) {
      if (!strcmp(p->cols[k].name, p->cols[p->ncols - 1].name))
        return fail(c, "column '%s' declared twice", p->cols[k].name);
    }
  }

  for (size_t k = 0; k < p->ncols; k++) {
    sl_column_t *col = &p->cols[k];
    if (col->derive != SL_DERIVE_DAY) continue;
    if (find_column(p, col->derive_src_name, &col->derive_src) != 0 || col->derive_src == k)
      return fail(c, "column '%s': day(%s) must name another column", col->name, col->derive_src_name);
    sl_col_type_t st = p->cols[col->derive_src].type;
    if (st != SL_COL_TIMESTAMP && st != SL_COL_DATE)
      return fail(c, "column '%s': day() needs a timestamp column", col->name);
    if (p->cols[col->derive_src].derive == SL_DERIVE_DAY)
      return fail(c, "column '%s': day() of a derived column", col->name);
  }

  json_t *pk = json_object_get(jp, "primary_key");
  if (!json_is_array(pk) || !json_array_size(pk)) return fail(c, "missing primary_key");
  json_t *first = json_array_get(pk, 0);
  json_t *part = json_is_array(first) ? first : NULL;
  if (part) {
    if (parse_key_list(c, p, part, &p->partition_key, &p->npartition_key)) return -EINVAL;
  } else {
    json_t *one = json_array();
    json_array_append(one, first);
    int rc = parse_key_list(c, p, one, &p->partition_key, &p->npartition_key);
    json_decref(one);
    if (rc) return rc;
  }
  json_t *rest = json_array();
  for (size_t k = 1; k < json_array_size(pk); k++) json_array_append(rest, json_array_get(pk, k));
  int rc = parse_key_list(c, p, rest, &p->clustering, &p->nclustering);
  json_decref(rest);
  if (rc) return rc;
  if (p->npartition_key == 0) return fail(c, "empty partition key");
  p->clustering_desc = calloc(p->nclustering + 1, sizeof *p->clustering_desc);
  json_t *order = json_object_get(jp, "clustering_order");
  if (order) {
    const char *key;
    json_t *v;
    json_object_foreach(order, key, v) {
      size_t idx;
      bool ok = false;
      if (find_column(p, key, &idx) == 0) {
        for (size_t k = 0; k < p->nclustering; k++) {
          if (p->clustering[k] == idx) {
            const char *dir = json_string_value(v);
            if (!dir || (strcasecmp(dir, "desc") && strcasecmp(dir, "asc")))
              return fail(c, "clustering_order: use asc or desc");
            p->clustering_desc[k] = !strcasecmp(dir, "desc");
            ok = true;
          }
        }
      }
      if (!ok) return fail(c, "clustering_order names '%s', not a clustering column", key);
    }
  }
  /* key columns must always have a value */
  for (size_t k = 0; k < p->npartition_key + p->nclustering; k++) {
    size_t ci = k < p->npartition_key ? p->partition_key[k] : p->clustering[k - p->npartition_key];
    sl_column_t *col = &p->cols[ci];
    if (!col->derive && !col->default_value) col->required = true;
  }

  json_t *filters = json_object_get(jp, "filters");
  if (filters) {
    if (!json_is_array(filters)) return fail(c, "filters must be a list");
    p->filters = calloc(json_array_size(filters) + 1, sizeof *p->filters);
    json_t *jf;
    json_array_foreach(filters, i, jf) {
      sl_filter_t *f = &p->filters[p->nfilters];
      const char *col = str_field(jf, "column"), *op = str_field(jf, "op"), *val = str_field(jf, "value");
      if (!col || find_column(p, col, &f->column) != 0) return fail(c, "filter: unknown column");
      static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">=", "exists", "missing"};
      bool found = false;
      for (int o = 0; o < 8 && op; o++) {
        if (!strcmp(op, ops[o])) f->op = (sl_op_t)o, found = true;
      }
      if (!found && op && !strcmp(op, "=")) f->op = SL_OP_EQ, found = true;
      if (!found) return fail(c, "filter on '%s': unknown op (== != < <= > >= exists missing)", col);
      if (f->op != SL_OP_EXISTS && f->op != SL_OP_MISSING) {
        if (!val) return fail(c, "filter on '%s': missing value", col);
        f->value = xstrdup(val);
        f->is_num = sl_coerce_parse_real(val, strlen(val), &f->num) == 0;
      }
      p->nfilters++;
    }
  }
  const char *key;
  json_t *v;
  json_object_foreach(jp, key, v) {
    static const char *const known[] = {"name",        "topics",        "group",   "format",      "dead_letter",
                                        "keyspace",    "replication",   "table",   "table_options", "columns",
                                        "primary_key", "clustering_order", "filters"};
    bool ok = false;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) ok |= !strcmp(key, known[k]);
    if (!ok) return fail(c, "unknown key '%s'", key);
  }
  return 0;
}

int sl_pipelines_parse(const char *yaml, size_t len, const char *origin, sl_pipeline_t **out, size_t *count,
                       char *err, size_t errlen) {
  ctx_t c = {err, errlen, origin, NULL};
  char yerr[256] = "";
  json_t *root = yaml_to_json(yaml, len, yerr, sizeof yerr);
  if (!root) {
    snprintf(err, errlen, "%s: %s", origin, yerr);
    return -EINVAL;
  }
  json_t *list = json_object_get(root, "pipelines");
  json_t *single = NULL;
  if (!list && json_is_object(root) && json_object_get(root, "name")) {
    single = json_array();
    json_array_append(single, root);
    list = single;
  }
  if (!json_is_array(list) || !json_array_size(list)) {
    json_decref(root);
    snprintf(err, errlen, "%s: expected `pipelines:` with a list of pipelines", origin);
    return -EINVAL;
  }
  size_t n = json_array_size(list);
  sl_pipeline_t *ps = calloc(n, sizeof *ps);
  if (!ps) abort();
  int rc = 0;
  size_t done = 0;
  for (; done < n && rc == 0; done++) {
    c.pipeline = NULL;
    rc = parse_pipeline(&c, json_array_get(list, done), &ps[done]);
  }
  json_decref(single);
  json_decref(root);
  if (rc) {
    sl_pipelines_free(ps, done);
    return rc;
  }
  for (size_t i = 0; i < n; i++) ps[i].plan = sl_map_plan_new(&ps[i]);
  *out = ps;
  *count = n;
  return 0;
}

void sl_pipelines_free(sl_pipeline_t *ps, size_t count) {
  if (!ps) return;
  for (size_t i = 0; i < count; i++) {
    sl_pipeline_t *p = &ps[i];
    sl_map_plan_free(p->plan);
    free(p->name);
    for (size_t t = 0; t < p->ntopics; t++) free(p->topics[t]);
    free(p->topics);
    free(p->group);
    free(p->format);
    free(p->dead_letter);
    free(p->keyspace);
    free(p->table);
    for (size_t k = 0; k < p->ncols; k++) {
      sl_column_t *col = &p->cols[k];
      free(col->name);
      if (col->has_path) free_path(&col->path);
      free(col->default_value);
      free(col->derive_src_name);
      for (size_t t = 0; t < col->ntmpl; t++) {
        if (col->tmpl[t].literal)
          free(col->tmpl[t].literal);
        else
          free_path(&col->tmpl[t].path);
      }
      free(col->tmpl);
    }
    free(p->cols);
    free(p->partition_key);
    free(p->clustering);
    free(p->clustering_desc);
    free(p->replication);
    free(p->table_options);
    for (size_t f = 0; f < p->nfilters; f++) free(p->filters[f].value);
    free(p->filters);
  }
  free(ps);
}

/* ---------------------------------------------------------------------------------------------------- CQL */
void sl_pipeline_keyspace_cql(const sl_pipeline_t *p, sl_buf_t *out) {
  put_str(out, "CREATE KEYSPACE IF NOT EXISTS ");
  put_str(out, p->keyspace);
  put_str(out, " WITH replication = ");
  put_str(out, p->replication);
}

void sl_pipeline_table_cql(const sl_pipeline_t *p, sl_buf_t *out) {
  put_str(out, "CREATE TABLE IF NOT EXISTS ");
  put_str(out, p->keyspace);
  put_str(out, ".");
  put_str(out, p->table);
  put_str(out, " (");
  for (size_t i = 0; i < p->ncols; i++) {
    put_str(out, p->cols[i].name);
    put_str(out, " ");
    put_str(out, type_names[p->cols[i].type]);
    put_str(out, ", ");
  }
  put_str(out, "PRIMARY KEY (");
  if (p->npartition_key > 1) put_str(out, "(");
  for (size_t i = 0; i < p->npartition_key; i++) {
    if (i) put_str(out, ", ");
    put_str(out, p->cols[p->partition_key[i]].name);
  }
  if (p->npartition_key > 1) put_str(out, ")");
  for (size_t i = 0; i < p->nclustering; i++) {
    put_str(out, ", ");
    put_str(out, p->cols[p->clustering[i]].name);
  }
  put_str(out, "))");
  if (p->nclustering) {
    put_str(out, " WITH CLUSTERING ORDER BY (");
    for (size_t i = 0; i < p->nclustering; i++) {
      if (i) put_str(out, ", ");
      put_str(out, p->cols[p->clustering[i]].name);
      put_str(out, p->clustering_desc[i] ? " DESC" : " ASC");
    }
    put_str(out, ")");
  }
  if (p->table_options) {
    put_str(out, p->nclustering ? " AND " : " WITH ");
    put_str(out, p->table_options);
  }
}

void sl_pipeline_insert_cql(const sl_pipeline_t *p, sl_buf_t *out) {
  put_str(out, "INSERT INTO ");
  put_str(out, p->keyspace);
  put_str(out, ".");
  put_str(out, p->table);
  put_str(out, " (");
  for (size_t i = 0; i < p->ncols; i++) {
    if (i) put_str(out, ", ");
    put_str(out, p->cols[i].name);
  }
  put_str(out, ") VALUES (");
  for (size_t i = 0; i < p->ncols; i++) put_str(out, i ? ", ?" : "?");
  put_str(out, ")");
}
