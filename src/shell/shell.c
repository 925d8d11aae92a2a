/* `sluice cql`: statements typed (GNU readline: history, line editing) or given with -e / -f; rows printed as
 * cqlsh prints them (an aligned table, "(N rows)"), or as JSON lines with --json; DESCRIBE from system_schema;
 * errors as cqlsh prints them ("<stdin>:1:InvalidRequest: Error from server: code=2200 [Invalid query] ...").
 *
 * The shell is synchronous: it submits one statement and runs the client's loop until the answer arrives. */
#include "shell/shell.h"

#include <ctype.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "cql/client.h"
#include "cql/proto.h"

typedef struct {
  uv_loop_t *loop;
  sl_cql_client_t *client;
  bool json;
  bool interactive; /* a terminal: page results with ---MORE--- */
  const char *source; /* "<stdin>" or the -f file name */
  int errors;
} shell_t;

/* ---------------------------------------------------------------- running statements */

typedef struct {
  size_t ncols;
  char **names;
  char **cells; /* text forms, row-major */
  size_t nrows, cap;
  sl_buf_t json; /* one JSON object per line */
  bool has_rows;
} table_t;

typedef struct {
  bool done, failed, more;
  sl_cql_error_t err;
  uint8_t *state;
  size_t state_len;
  table_t *t;
} call_t;

static void table_free(table_t *t) {
  for (size_t i = 0; i < t->ncols; i++) free(t->names[i]);
  free(t->names);
  for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  sl_buf_free(&t->json);
  memset(t, 0, sizeof *t);
}

static char *buf_str(sl_buf_t *b) {
  char *s = malloc(b->len + 1);
  if (!s) abort();
  if (b->len) memcpy(s, b->data, b->len);
  s[b->len] = 0;
  return s;
}

static void on_result(const sl_cql_result_t *res, const sl_cql_error_t *err, void *arg) {
  call_t *c = arg;
  c->done = true;
  if (err) {
    c->failed = true;
    c->err = *err;
    return;
  }
  table_t *t = c->t;
  size_t ncols = sl_cql_result_column_count(res);
  if (ncols && !t->names) {
    t->ncols = ncols;
    t->names = calloc(ncols, sizeof *t->names);
    if (!t->names) abort();
    for (size_t i = 0; i < ncols; i++) t->names[i] = strdup(sl_cql_result_column_name(res, i));
  }
  if (ncols) t->has_rows = true;
  size_t nrows = sl_cql_result_row_count(res);
  if (t->nrows + nrows > t->cap) {
    t->cap = (t->nrows + nrows) * 2;
    t->cells = realloc(t->cells, t->cap * (ncols ? ncols : 1) * sizeof *t->cells);
    if (!t->cells) abort();
  }
  sl_buf_t b;
  sl_buf_init(&b);
  for (size_t r = 0; r < nrows; r++) {
    sl_buf_put(&t->json, "{", 1);
    for (size_t col = 0; col < ncols; col++) {
      const sl_cql_type_t *ty = sl_cql_result_column_type(res, col);
      sl_slice_t cell = sl_cql_result_cell(res, r, col);
      b.len = 0;
      sl_cql_format_cell(ty, cell, &b);
      t->cells[(t->nrows + r) * ncols + col] = buf_str(&b);
      if (col) sl_buf_put(&t->json, ", ", 2);
      sl_buf_t name;
      sl_buf_init(&name);
      sl_cql_type_t text = {.id = CQL_TYPE_VARCHAR};
      sl_slice_t ns = {(const uint8_t *)t->names[col], strlen(t->names[col])};
      sl_cql_format_cell_json(&text, ns, &t->json);
      sl_buf_free(&name);
      sl_buf_put(&t->json, ": ", 2);
      sl_cql_format_cell_json(ty, cell, &t->json);
    }
    sl_buf_put(&t->json, "}\n", 2);
  }
  sl_buf_free(&b);
  t->nrows += nrows;
  free(c->state);
  c->state = NULL;
  c->more = sl_cql_result_has_more_pages(res);
  if (c->more) {
    sl_slice_t s = sl_cql_result_paging_state(res);
    c->state = malloc(s.len ? s.len : 1);
    if (!c->state) abort();
    if (s.len) memcpy(c->state, s.ptr, s.len);
    c->state_len = s.len;
  }
}

static void run_until(shell_t *sh, const bool *done) {
  while (!*done) uv_run(sh->loop, UV_RUN_ONCE);
}

/* One page of query (with paging state when continuing) into t. */
static int run_page(shell_t *sh, const char *query, call_t *c, int32_t page_size) {
  sl_cql_statement_t *st = sl_cql_statement_new(query, 0);
  sl_cql_statement_set_page_size(st, page_size);
  if (c->state) sl_cql_statement_set_paging_state(st, c->state, c->state_len);
  c->done = c->failed = false;
  sl_cql_execute(sh->client, st, on_result, c);
  run_until(sh, &c->done);
  return c->failed ? -1 : 0;
}

/* Runs query to the end (all pages) into t; returns 0 or -1 with err. */
static int run_all(shell_t *sh, const char *query, table_t *t, sl_cql_error_t *err) {
  call_t c = {.t = t};
  int rc;
  do {
    rc = run_page(sh, query, &c, 5000);
  } while (rc == 0 && c.more);
  if (rc != 0) *err = c.err;
  free(c.state);
  return rc;
}

/* ---------------------------------------------------------------- output */

/* Display width of UTF-8 text (code points; good enough for the tables). */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) w++;
  return w;
}

static void pad(FILE *out, size_t n) {
  while (n--) fputc(' ', out);
}

static void print_table(shell_t *sh, const table_t *t, size_t from, size_t to) {
  FILE *out = stdout;
  if (sh->json) {
    /* the JSON buffer holds one line per row */
    const char *p = (const char *)t->json.data, *end = p + t->json.len;
    for (size_t r = 0; p && p < end; r++) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      if (!nl) break;
      if (r >= from && r < to) fwrite(p, 1, (size_t)(nl - p + 1), out);
      p = nl + 1;
    }
    return;
  }
  size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof *w);
  if (!w) abort();
  for (size_t c = 0; c < t->ncols; c++) {
    w[c] = text_width(t->names[c]);
    for (size_t r = from; r < to; r++) {
      size_t x = text_width(t->cells[r * t->ncols + c]);
      if (x > w[c]) w[c] = x;
    }
  }
  fputc('\n', out);
  for (size_t c = 0; c < t->ncols; c++) { /* headers left-aligned, values right-aligned, as cqlsh */
    fprintf(out, "%s%s", c ? " | " : " ", t->names[c]);
    pad(out, w[c] - text_width(t->names[c]));
  }
  fputc('\n', out);
  fputc('-', out);
  for (size_t c = 0; c < t->ncols; c++) {
    if (c) fputs("-+-", out);
    for (size_t i = 0; i < w[c]; i++) fputc('-', out);
  }
  fputs("-\n", out);
  for (size_t r = from; r < to; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const char *v = t->cells[r * t->ncols + c];
      fputs(c ? " | " : " ", out);
      pad(out, w[c] - text_width(v));
      fputs(v, out);
    }
    fputc('\n', out);
  }
  free(w);
}

/* cqlsh's rendering of an error: the driver's exception class name, then its text. */
static void print_error(shell_t *sh, int line, const sl_cql_error_t *e) {
  sh->errors++;
  const char *name = NULL, *summary = NULL;
  bool wrapped = false; /* the driver wraps these in an exception whose text is the "Error from server" line */
  switch (e->code) {
    case CQL_ERR_SERVER: name = "ServerError"; break;
    case CQL_ERR_PROTOCOL: name = "ProtocolException"; break;
    case CQL_ERR_BAD_CREDENTIALS: name = "BadCredentials"; break;
    case CQL_ERR_UNAVAILABLE: name = "Unavailable", summary = "Unavailable exception", wrapped = true; break;
    case CQL_ERR_OVERLOADED: name = "OverloadedErrorMessage"; break;
    case CQL_ERR_IS_BOOTSTRAPPING: name = "IsBootstrappingErrorMessage"; break;
    case CQL_ERR_TRUNCATE: name = "TruncateError"; break;
    case CQL_ERR_WRITE_TIMEOUT:
      name = "WriteTimeout", summary = "Coordinator node timed out waiting for replica nodes' responses";
      wrapped = true;
      break;
    case CQL_ERR_READ_TIMEOUT:
      name = "ReadTimeout", summary = "Coordinator node timed out waiting for replica nodes' responses";
      wrapped = true;
      break;
    case 0x1300: name = "ReadFailure", summary = "Replica(s) failed to execute read", wrapped = true; break;
    case 0x1400: name = "FunctionFailure", summary = "User Defined Function failure", wrapped = true; break;
    case 0x1500: name = "WriteFailure", summary = "Replica(s) failed to execute write", wrapped = true; break;
    case CQL_ERR_SYNTAX: name = "SyntaxException"; break;
    case CQL_ERR_UNAUTHORIZED: name = "Unauthorized", summary = "Unauthorized", wrapped = true; break;
    case CQL_ERR_INVALID: name = "InvalidRequest", summary = "Invalid query", wrapped = true; break;
    case CQL_ERR_CONFIG: name = "ConfigurationException"; break;
    case CQL_ERR_ALREADY_EXISTS: name = "AlreadyExists"; break;
    case CQL_ERR_UNPREPARED: name = "PreparedQueryNotFound"; break;
    case SL_CQL_CLIENT_TIMEOUT: name = "OperationTimedOut"; break;
    case SL_CQL_CLIENT_NO_HOST: name = "NoHostAvailable"; break;
    case SL_CQL_CLIENT_CONNECTION_CLOSED: name = "ConnectionShutdown"; break;
    case SL_CQL_CLIENT_BAD_VALUE: name = "ValueError"; break;
    case SL_CQL_CLIENT_OVERLOADED: name = "BusyConnectionException"; break;
    default: name = e->code < 0 ? "DriverException" : "ServerError"; break;
  }
  if (wrapped)
    fprintf(stderr, "%s:%d:%s: Error from server: code=%04x [%s] message=\"%s\"\n", sh->source, line, name,
            (unsigned)e->code, summary, e->message);
  else
    fprintf(stderr, "%s:%d:%s: %s\n", sh->source, line, name, e->message);
}

/* ---------------------------------------------------------------- DESCRIBE */

static char *cell_of(const table_t *t, size_t r, const char *col) {
  for (size_t c = 0; c < t->ncols; c++)
    if (!strcmp(t->names[c], col)) return t->cells[r * t->ncols + c];
  return NULL;
}

static int describe_query(shell_t *sh, int line, const char *q, table_t *t) {
  sl_cql_error_t err;
  if (run_all(sh, q, t, &err) != 0) {
    print_error(sh, line, &err);
    return -1;
  }
  return 0;
}

/* Identifiers that need no quotes: lower-case letters, digits, underscores, not starting with a digit. */
static void put_ident(sl_buf_t *b, const char *s) {
  bool plain = *s && !isdigit((unsigned char)*s);
  for (const char *p = s; *p; p++)
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_')) plain = false;
  if (plain) {
    sl_buf_put(b, s, strlen(s));
    return;
  }
  sl_buf_put(b, "\"", 1);
  for (const char *p = s; *p; p++) {
    if (*p == '"') sl_buf_put(b, "\"", 1);
    sl_buf_put(b, p, 1);
  }
  sl_buf_put(b, "\"", 1);
}

static void sappend(sl_buf_t *b, const char *s) { sl_buf_put(b, s, strlen(s)); }

static int cmp_pos(const void *a, const void *b) {
  const int *x = a, *y = b;
  return x[1] - y[1];
}

/* CREATE TABLE from system_schema.columns (and the clustering order). */
static int describe_table(shell_t *sh, int line, const char *ks, const char *tb, sl_buf_t *out) {
  char q[600];
  snprintf(q, sizeof q,
           "SELECT column_name, kind, position, type, clustering_order FROM system_schema.columns WHERE "
           "keyspace_name = '%s' AND table_name = '%s'",
           ks, tb);
  table_t t = {0};
  if (describe_query(sh, line, q, &t) != 0) return -1;
  if (t.nrows == 0) {
    sl_cql_error_t e = {CQL_ERR_INVALID, ""};
    snprintf(e.message, sizeof e.message, "Table '%s' not found in keyspace '%s'", tb, ks);
    sh->errors++;
    fprintf(stderr, "%s:%d:InvalidRequest: %s\n", sh->source, line, e.message);
    table_free(&t);
    return -1;
  }
  /* order: partition key, clustering, then the rest alphabetically (as Cassandra lists them) */
  int(*pk)[2] = calloc(t.nrows, sizeof *pk), (*ck)[2] = calloc(t.nrows, sizeof *ck);
  int npk = 0, nck = 0;
  if (!pk || !ck) abort();
  for (size_t r = 0; r < t.nrows; r++) {
    const char *kind = cell_of(&t, r, "kind");
    int pos = atoi(cell_of(&t, r, "position"));
    if (!strcmp(kind, "partition_key")) pk[npk][0] = (int)r, pk[npk++][1] = pos;
    else if (!strcmp(kind, "clustering")) ck[nck][0] = (int)r, ck[nck++][1] = pos;
  }
  qsort(pk, (size_t)npk, sizeof *pk, cmp_pos);
  qsort(ck, (size_t)nck, sizeof *ck, cmp_pos);
  sappend(out, "\nCREATE TABLE ");
  put_ident(out, ks);
  sappend(out, ".");
  put_ident(out, tb);
  sappend(out, " (\n");
  bool simple = npk == 1 && nck == 0;
  for (int pass = 0; pass < 3; pass++) {
    for (size_t r = 0; r < t.nrows; r++) {
      const char *kind = cell_of(&t, r, "kind");
      int which = !strcmp(kind, "partition_key") ? 0 : !strcmp(kind, "clustering") ? 1 : 2;
      if (which != pass) continue;
      (void)0;
    }
  }
  /* columns: pk in order, clustering in order, regular/static by name */
  size_t *order = calloc(t.nrows, sizeof *order), n = 0;
  if (!order) abort();
  for (int i = 0; i < npk; i++) order[n++] = (size_t)pk[i][0];
  for (int i = 0; i < nck; i++) order[n++] = (size_t)ck[i][0];
  size_t first_rest = n;
  for (size_t r = 0; r < t.nrows; r++) {
    const char *kind = cell_of(&t, r, "kind");
    if (strcmp(kind, "partition_key") && strcmp(kind, "clustering")) order[n++] = r;
  }
  for (size_t i = first_rest; i < n; i++) /* insertion sort by name */
    for (size_t j = i; j > first_rest && strcmp(cell_of(&t, order[j - 1], "column_name"),
                                                 cell_of(&t, order[j], "column_name")) > 0;
         j--) {
      size_t tmp = order[j];
      order[j] = order[j - 1];
      order[j - 1] = tmp;
    }
  for (size_t i = 0; i < n; i++) {
    size_t r = order[i];
    sappend(out, "    ");
    put_ident(out, cell_of(&t, r, "column_name"));
    sappend(out, " ");
    sappend(out, cell_of(&t, r, "type"));
    if (!strcmp(cell_of(&t, r, "kind"), "static")) sappend(out, " static");
    if (simple && i == 0) sappend(out, " PRIMARY KEY");
    sappend(out, i + 1 < n || !simple ? ",\n" : "\n");
  }
  if (!simple) {
    sappend(out, "    PRIMARY KEY (");
    if (npk > 1) sappend(out, "(");
    for (int i = 0; i < npk; i++) {
      if (i) sappend(out, ", ");
      put_ident(out, cell_of(&t, (size_t)pk[i][0], "column_name"));
    }
    if (npk > 1) sappend(out, ")");
    for (int i = 0; i < nck; i++) {
      sappend(out, ", ");
      put_ident(out, cell_of(&t, (size_t)ck[i][0], "column_name"));
    }
    sappend(out, ")\n");
  }
  sappend(out, ")");
  if (nck) {
    sappend(out, " WITH CLUSTERING ORDER BY (");
    for (int i = 0; i < nck; i++) {
      if (i) sappend(out, ", ");
      put_ident(out, cell_of(&t, (size_t)ck[i][0], "column_name"));
      const char *o = cell_of(&t, (size_t)ck[i][0], "clustering_order");
      sappend(out, o && !strcasecmp(o, "desc") ? " DESC" : " ASC");
    }
    sappend(out, ")");
  }
  sappend(out, ";\n");
  free(order);
  free(pk);
  free(ck);
  table_free(&t);
  return 0;
}

/* Splits "ks.t" / "t" (quotes stripped, unquoted names lower-cased). */
static void split_name(const char *s, char *ks, size_t kcap, char *tb, size_t tcap, const char *default_ks) {
  char parts[2][256] = {"", ""};
  int n = 0;
  const char *p = s;
  while (*p && n < 2) {
    size_t len = 0;
    if (*p == '"') {
      p++;
      while (*p && !(*p == '"' && p[1] != '"') && len < 255) {
        if (*p == '"') p++;
        parts[n][len++] = *p++;
      }
      if (*p == '"') p++;
    } else {
      while (*p && *p != '.' && len < 255) parts[n][len++] = (char)tolower((unsigned char)*p++);
    }
    parts[n][len] = 0;
    n++;
    if (*p == '.') p++;
    else break;
  }
  if (n == 2) {
    snprintf(ks, kcap, "%s", parts[0]);
    snprintf(tb, tcap, "%s", parts[1]);
  } else {
    snprintf(ks, kcap, "%s", default_ks ? default_ks : "");
    snprintf(tb, tcap, "%s", parts[0]);
  }
}

static char current_ks[256];

static void print_names(const table_t *t, const char *col) {
  size_t width = 0;
  for (size_t r = 0; r < t->nrows; r++) {
    const char *v = cell_of(t, r, col);
    if (v) {
      fputs(width ? "  " : "", stdout);
      fputs(v, stdout);
      width += strlen(v) + 2;
    }
  }
  fputc('\n', stdout);
}

static int describe(shell_t *sh, int line, const char *args) {
  while (isspace((unsigned char)*args)) args++;
  char word[64] = "";
  size_t wl = 0;
  while (args[wl] && !isspace((unsigned char)args[wl]) && wl < sizeof word - 1) {
    word[wl] = (char)toupper((unsigned char)args[wl]);
    wl++;
  }
  word[wl] = 0;
  const char *rest = args + wl;
  while (isspace((unsigned char)*rest)) rest++;
  table_t t = {0};
  int rc = 0;
  if (!strcmp(word, "KEYSPACES")) {
    if ((rc = describe_query(sh, line, "SELECT keyspace_name FROM system_schema.keyspaces", &t)) == 0) {
      fputc('\n', stdout);
      print_names(&t, "keyspace_name");
      fputc('\n', stdout);
    }
  } else if (!strcmp(word, "TABLES")) {
    if ((rc = describe_query(sh, line, "SELECT keyspace_name, table_name FROM system_schema.tables", &t)) == 0) {
      /* group by keyspace, in the order the server returned them */
      for (size_t r = 0; r < t.nrows; r++) {
        const char *ks = cell_of(&t, r, "keyspace_name");
        bool seen = false;
        for (size_t q = 0; q < r; q++)
          if (!strcmp(cell_of(&t, q, "keyspace_name"), ks)) seen = true;
        if (seen || (current_ks[0] && strcmp(ks, current_ks) != 0)) continue;
        printf("\nKeyspace %s\n", ks);
        for (size_t i = 0; i < strlen(ks) + 9; i++) fputc('-', stdout);
        fputc('\n', stdout);
        size_t col = 0;
        for (size_t q = r; q < t.nrows; q++)
          if (!strcmp(cell_of(&t, q, "keyspace_name"), ks)) {
            printf("%s%s", col++ ? "  " : "", cell_of(&t, q, "table_name"));
          }
        fputc('\n', stdout);
      }
      fputc('\n', stdout);
    }
  } else if (!strcmp(word, "TABLE") || !strcmp(word, "COLUMNFAMILY")) {
    char ks[256], tb[256];
    split_name(rest, ks, sizeof ks, tb, sizeof tb, current_ks);
    if (!ks[0]) {
      sh->errors++;
      fprintf(stderr, "%s:%d:NoKeyspaceError: No keyspace specified and no current keyspace\n", sh->source, line);
      return -1;
    }
    sl_buf_t out;
    sl_buf_init(&out);
    rc = describe_table(sh, line, ks, tb, &out);
    if (rc == 0) {
      fwrite(out.data, 1, out.len, stdout);
      fputc('\n', stdout);
    }
    sl_buf_free(&out);
  } else if (!strcmp(word, "KEYSPACE")) {
    char ks[256], tb[256];
    split_name(*rest ? rest : current_ks, ks, sizeof ks, tb, sizeof tb, NULL);
    char q[600];
    snprintf(q, sizeof q,
             "SELECT keyspace_name, durable_writes, replication FROM system_schema.keyspaces WHERE keyspace_name = "
             "'%s'",
             tb);
    if ((rc = describe_query(sh, line, q, &t)) == 0) {
      if (t.nrows == 0) {
        sh->errors++;
        fprintf(stderr, "%s:%d:NotFoundException: Keyspace '%s' not found.\n", sh->source, line, tb);
        rc = -1;
      } else {
        sl_buf_t out;
        sl_buf_init(&out);
        sappend(&out, "\nCREATE KEYSPACE ");
        put_ident(&out, tb);
        sappend(&out, " WITH replication = ");
        sappend(&out, cell_of(&t, 0, "replication"));
        sappend(&out, "  AND durable_writes = ");
        sappend(&out, !strcmp(cell_of(&t, 0, "durable_writes"), "True") ? "true" : "false");
        sappend(&out, ";\n");
        table_t tt = {0};
        snprintf(q, sizeof q, "SELECT table_name FROM system_schema.tables WHERE keyspace_name = '%s'", tb);
        if (describe_query(sh, line, q, &tt) == 0)
          for (size_t r = 0; r < tt.nrows; r++) describe_table(sh, line, tb, cell_of(&tt, r, "table_name"), &out);
        table_free(&tt);
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
        sl_buf_free(&out);
      }
    }
  } else {
    sh->errors++;
    fprintf(stderr, "%s:%d:SyntaxException: unsupported DESCRIBE target '%s' (KEYSPACES, KEYSPACE, TABLES, TABLE)\n",
            sh->source, line, word);
    rc = -1;
  }
  table_free(&t);
  return rc;
}

/* ---------------------------------------------------------------- statements */

static bool starts_with_word(const char *s, const char *w) {
  size_t n = strlen(w);
  return !strncasecmp(s, w, n) && (!s[n] || isspace((unsigned char)s[n]));
}

static int run_statement(shell_t *sh, int line, char *stmt) {
  while (isspace((unsigned char)*stmt)) stmt++;
  size_t len = strlen(stmt);
  while (len && (isspace((unsigned char)stmt[len - 1]) || stmt[len - 1] == ';')) stmt[--len] = 0;
  if (!len) return 0;
  if (starts_with_word(stmt, "DESCRIBE") || starts_with_word(stmt, "DESC"))
    return describe(sh, line, stmt + (starts_with_word(stmt, "DESC") ? 4 : 8));
  if (starts_with_word(stmt, "EXIT") || starts_with_word(stmt, "QUIT")) return 1;
  table_t t = {0};
  call_t c = {.t = &t};
  int rc = 0;
  size_t printed = 0;
  int32_t page = sh->interactive ? 100 : 5000;
  for (;;) {
    if (run_page(sh, stmt, &c, page) != 0) {
      print_error(sh, line, &c.err);
      rc = -1;
      break;
    }
    if (sh->interactive && c.more && t.has_rows) { /* page through long results */
      print_table(sh, &t, printed, t.nrows);
      printed = t.nrows;
      fputs("\n---MORE---", stdout);
      fflush(stdout);
      char *ans = readline("");
      bool stop = !ans || tolower((unsigned char)ans[0]) == 'q';
      free(ans);
      if (stop) break;
      continue;
    }
    if (!c.more) break;
  }
  if (rc == 0 && t.has_rows) {
    if (printed < t.nrows || printed == 0) print_table(sh, &t, printed, t.nrows);
    if (!sh->json) printf("\n(%zu rows)\n", t.nrows);
  }
  /* keep track of USE for DESCRIBE */
  if (rc == 0 && starts_with_word(stmt, "USE")) {
    char ks[256], tb[256];
    const char *a = stmt + 3;
    while (isspace((unsigned char)*a)) a++;
    split_name(a, ks, sizeof ks, tb, sizeof tb, NULL);
    snprintf(current_ks, sizeof current_ks, "%s", tb);
  }
  free(c.state);
  table_free(&t);
  fflush(stdout);
  return rc;
}

/* Feeds text through a statement splitter (';' outside quotes and comments). Returns 1 to exit. */
typedef struct {
  sl_buf_t cur;
  int start_line, line;
  char quote;     /* ', " or 0 */
  bool dollar;    /* inside $$...$$ */
  bool block;     /* inside a block comment */
} splitter_t;

static int feed(shell_t *sh, splitter_t *sp, const char *text, bool flush) {
  for (const char *p = text;; p++) {
    char ch = *p;
    if (!ch) break;
    if (!sp->cur.len && isspace((unsigned char)ch)) {
      if (ch == '\n') sp->line++;
      continue;
    }
    if (!sp->cur.len) sp->start_line = sp->line;
    if (sp->block) {
      if (ch == '*' && p[1] == '/') sp->block = false, sl_buf_put(&sp->cur, p++, 1);
    } else if (sp->dollar) {
      if (ch == '$' && p[1] == '$') sp->dollar = false, sl_buf_put(&sp->cur, p++, 1);
    } else if (sp->quote) {
      if (ch == sp->quote) sp->quote = 0;
    } else if (ch == '\'' || ch == '"') {
      sp->quote = ch;
    } else if (ch == '$' && p[1] == '$') {
      sp->dollar = true;
      sl_buf_put(&sp->cur, p++, 1);
    } else if (ch == '/' && p[1] == '*') {
      sp->block = true;
      sl_buf_put(&sp->cur, p++, 1);
    } else if ((ch == '-' && p[1] == '-') || (ch == '/' && p[1] == '/')) {
      while (p[1] && p[1] != '\n') p++; /* line comment: dropped */
      continue;
    } else if (ch == ';') {
      sl_buf_put(&sp->cur, "\0", 1);
      char *stmt = (char *)sp->cur.data;
      int r = run_statement(sh, sp->start_line, stmt);
      sp->cur.len = 0;
      if (r == 1) return 1;
      continue;
    }
    if (ch == '\n') sp->line++;
    sl_buf_put(&sp->cur, &ch, 1);
  }
  if (flush && sp->cur.len) {
    sl_buf_put(&sp->cur, "\0", 1);
    int r = run_statement(sh, sp->start_line, (char *)sp->cur.data);
    sp->cur.len = 0;
    if (r == 1) return 1;
  }
  return 0;
}

/* ---------------------------------------------------------------- main */

static bool connect_done;
static sl_cql_error_t connect_err;
static bool connect_failed;
static void on_connect(sl_cql_client_t *c, const sl_cql_error_t *err, void *arg) {
  (void)c, (void)arg;
  connect_done = true;
  if (err) {
    connect_failed = true;
    connect_err = *err;
  }
}

static bool closed;
static void on_closed(void *arg) {
  (void)arg;
  closed = true;
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: sluice cql [--host HOST:PORT] [-u USER -p PASSWORD] [-k KEYSPACE] [-e STATEMENTS | -f FILE]\n"
          "                  [--json] [--timeout MS]\n"
          "                  [--ssl [--cafile FILE] [--certfile FILE --keyfile FILE] [--no-check-hostname]\n"
          "                         [--server-name NAME]]\n"
          "\n"
          "An interactive CQL shell (like cqlsh). Without -e or -f it reads statements from the terminal, with\n"
          "history and line editing. DESCRIBE KEYSPACES | KEYSPACE ks | TABLES | TABLE [ks.]t read system_schema.\n"
          "\n"
          "TLS (cqlsh --ssl):\n"
          "  --ssl                  connect with TLS; the server's certificate is always verified\n"
          "  --cafile FILE          PEM CA certificates that sign the server's certificate (default: the system's\n"
          "                         trust store)\n"
          "  --certfile, --keyfile  client certificate and key (PEM) for servers that require one\n"
          "  --no-check-hostname    accept a certificate that does not name the host (the chain is still checked)\n"
          "  --server-name NAME     SNI and the name the certificate must have (default: the host as given)\n"
          "  (--cafile, --certfile, --keyfile and --server-name imply --ssl)\n");
}

int sl_shell_main(int argc, char **argv) {
  const char *host = "127.0.0.1:9042", *user = NULL, *pass = NULL, *exec = NULL, *file = NULL, *ks = NULL;
  bool json = false, ssl = false, check_hostname = true;
  const char *cafile = NULL, *certfile = NULL, *keyfile = NULL, *server_name = NULL;
  int timeout = 0;
  static const struct option opts[] = {{"host", required_argument, 0, 'H'},  {"username", required_argument, 0, 'u'},
                                       {"password", required_argument, 0, 'p'}, {"execute", required_argument, 0, 'e'},
                                       {"file", required_argument, 0, 'f'},     {"keyspace", required_argument, 0, 'k'},
                                       {"json", no_argument, 0, 'j'},           {"timeout", required_argument, 0, 't'},
                                       {"ssl", no_argument, 0, 'S'},            {"cafile", required_argument, 0, 'C'},
                                       {"certfile", required_argument, 0, 'c'}, {"keyfile", required_argument, 0, 'K'},
                                       {"no-check-hostname", no_argument, 0, 'N'},
                                       {"server-name", required_argument, 0, 'n'},
                                       {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "u:p:e:f:k:h", opts, NULL)) != -1;) {
    switch (c) {
      case 'H': host = optarg; break;
      case 'u': user = optarg; break;
      case 'p': pass = optarg; break;
      case 'e': exec = optarg; break;
      case 'f': file = optarg; break;
      case 'k': ks = optarg; break;
      case 'j': json = true; break;
      case 't': timeout = atoi(optarg); break;
      case 'S': ssl = true; break;
      case 'C': cafile = optarg, ssl = true; break;
      case 'c': certfile = optarg, ssl = true; break;
      case 'K': keyfile = optarg, ssl = true; break;
      case 'N': check_hostname = false; break;
      case 'n': server_name = optarg, ssl = true; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 1;
    }
  }
  if (optind < argc) { /* cqlsh also takes "host [port]" positionally */
    host = argv[optind];
  }
  signal(SIGPIPE, SIG_IGN);
  shell_t sh = {.loop = uv_default_loop(), .json = json, .source = "<stdin>"};
  sl_cql_client_config_t cfg;
  sl_cql_client_config_defaults(&cfg);
  cfg.contact_points = host;
  cfg.username = user;
  cfg.password = pass;
  cfg.keyspace = ks;
  if (timeout > 0) cfg.request_timeout_ms = timeout;
  cfg.tls = ssl;
  cfg.tls_ca_file = cafile;
  cfg.tls_cert_file = certfile;
  cfg.tls_key_file = keyfile;
  cfg.tls_server_name = server_name;
  cfg.tls_check_hostname = check_hostname;
  char why[512];
  if (sl_cql_client_create_with_error(sh.loop, &cfg, &sh.client, why, sizeof why) != 0) {
    fprintf(stderr, "Connection error: %s\n", why);
    return 1;
  }
  if (ks) snprintf(current_ks, sizeof current_ks, "%s", ks);
  sl_cql_client_connect(sh.client, on_connect, NULL);
  while (!connect_done) uv_run(sh.loop, UV_RUN_ONCE);
  int status = 0;
  if (connect_failed) {
    /* an authentication failure is printed as cqlsh prints it (the client words it as the Python driver does) */
    const char *auth = strstr(connect_err.message, "AuthenticationFailed(");
    fprintf(stderr, "Connection error: ('Unable to connect to any servers', {'%s': %s})\n", host,
            auth ? auth : connect_err.message);
    status = 1;
    goto out;
  }
  splitter_t sp = {.line = 1};
  sl_buf_init(&sp.cur);
  if (exec) {
    feed(&sh, &sp, exec, true);
  } else if (file) {
    FILE *f = fopen(file, "r");
    if (!f) {
      fprintf(stderr, "Could not open '%s'\n", file);
      status = 1;
    } else {
      sh.source = file;
      char buf[65536];
      size_t n;
      sl_buf_t all;
      sl_buf_init(&all);
      while ((n = fread(buf, 1, sizeof buf, f)) > 0) sl_buf_put(&all, buf, n);
      sl_buf_put(&all, "\0", 1);
      fclose(f);
      feed(&sh, &sp, (const char *)all.data, true);
      sl_buf_free(&all);
    }
  } else if (isatty(STDIN_FILENO)) {
    sh.interactive = isatty(STDOUT_FILENO) && !json;
    printf("Connected to %s.\n[sluice cql | CQL spec 3.4.5 | Native protocol v4]\nUse HELP for help.\n", host);
    using_history();
    for (;;) {
      char prompt[300];
      snprintf(prompt, sizeof prompt, sp.cur.len ? "   ... " : current_ks[0] ? "cqlsh:%s> " : "cqlsh> ",
               current_ks);
      char *l = readline(prompt);
      if (!l) {
        fputc('\n', stdout);
        break;
      }
      if (*l) add_history(l);
      size_t n = strlen(l);
      char *withnl = malloc(n + 2);
      if (!withnl) abort();
      memcpy(withnl, l, n);
      withnl[n] = '\n';
      withnl[n + 1] = 0;
      free(l);
      int r = feed(&sh, &sp, withnl, false);
      free(withnl);
      if (r == 1) break;
    }
  } else { /* statements piped in */
    char buf[65536];
    size_t n;
    sl_buf_t all;
    sl_buf_init(&all);
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) sl_buf_put(&all, buf, n);
    sl_buf_put(&all, "\0", 1);
    feed(&sh, &sp, (const char *)all.data, true);
    sl_buf_free(&all);
  }
  sl_buf_free(&sp.cur);
  if (sh.errors) status = 2;
out:
  sl_cql_client_close(sh.client, on_closed, NULL);
  while (!closed) uv_run(sh.loop, UV_RUN_ONCE);
  uv_run(sh.loop, UV_RUN_DEFAULT);
  uv_loop_close(sh.loop);
  fflush(stdout);
  return status;
}
