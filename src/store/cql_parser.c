/* CQL lexer and recursive-descent parser for the statements the store executes (see cql_ast.h).
 *
 * The grammar follows Cassandra's Cql.g for the subset we support; unsupported statements are syntax errors.
 * Errors carry the position, like Cassandra's "line 1:7 no viable alternative at input 'x'". */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store/cql_ast.h"

typedef enum { T_EOF, T_IDENT, T_QIDENT, T_STRING, T_NUMBER, T_UUID, T_HEX, T_PUNCT, T_BIND, T_NAMED_BIND } tok_kind_t;

typedef struct {
  tok_kind_t kind;
  const char *p; /* start in the query */
  size_t len;
  char punct[3];
  const char *value; /* T_STRING / T_QIDENT: unescaped; T_NAMED_BIND: the name */
  size_t vlen;
} tok_t;

typedef struct {
  sl_arena_t *a;
  const char *q;
  size_t len, pos;
  tok_t tok; /* current token */
  const char *err;
  int nbind;
  int depth; /* nesting of terms and selectors, bounded so hostile input cannot exhaust the stack */
} parser_t;

static void fail(parser_t *ps, const char *fmt, const char *what) {
  if (ps->err) return;
  size_t line = 1, col = 0;
  size_t at = ps->tok.p ? (size_t)(ps->tok.p - ps->q) : ps->pos;
  for (size_t i = 0; i < at && i < ps->len; i++) {
    if (ps->q[i] == '\n') {
      line++;
      col = 0;
    } else {
      col++;
    }
  }
  char buf[512];
  int n = snprintf(buf, sizeof buf, "line %zu:%zu ", line, col);
  snprintf(buf + n, sizeof buf - (size_t)n, fmt, what);
  ps->err = sl_arena_strndup(ps->a, buf, strlen(buf));
}

static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static bool looks_like_uuid(const char *s, size_t n) {
  if (n < 36) return false;
  for (int i = 0; i < 36; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!isxdigit((unsigned char)s[i])) {
      return false;
    }
  }
  return n == 36 || !is_ident_char(s[36]);
}

/* A quoted identifier ("...") or string literal ('...'): the quote doubled stands for itself. The token's value is
 * the unescaped text, in the arena. */
static void scan_quoted(parser_t *ps, tok_t *t, char quote, tok_kind_t kind, const char *unterminated) {
  const char *q = ps->q;
  size_t n = ps->len, s = ps->pos;
  char *buf = sl_arena_alloc(ps->a, n - s + 1);
  size_t o = 0, i = s + 1;
  for (;;) {
    if (i >= n) {
      fail(ps, "%s", unterminated);
      t->kind = T_EOF;
      return;
    }
    if (q[i] == quote) {
      if (i + 1 < n && q[i + 1] == quote) {
        buf[o++] = quote;
        i += 2;
        continue;
      }
      i++;
      break;
    }
    buf[o++] = q[i++];
  }
  ps->pos = i;
  t->kind = kind;
  t->value = buf;
  t->vlen = o;
}

static void lex(parser_t *ps) {
  tok_t *t = &ps->tok;
  memset(t, 0, sizeof *t);
  const char *q = ps->q;
  size_t n = ps->len;
  /* whitespace and comments */
  for (;;) {
    while (ps->pos < n && isspace((unsigned char)q[ps->pos])) ps->pos++;
    if (ps->pos + 1 < n && ((q[ps->pos] == '-' && q[ps->pos + 1] == '-') || (q[ps->pos] == '/' && q[ps->pos + 1] == '/'))) {
      while (ps->pos < n && q[ps->pos] != '\n') ps->pos++;
      continue;
    }
    if (ps->pos + 1 < n && q[ps->pos] == '/' && q[ps->pos + 1] == '*') {
      ps->pos += 2;
      while (ps->pos + 1 < n && !(q[ps->pos] == '*' && q[ps->pos + 1] == '/')) ps->pos++;
      ps->pos = ps->pos + 2 <= n ? ps->pos + 2 : n;
      continue;
    }
    break;
  }
  t->p = q + ps->pos;
  if (ps->pos >= n) {
    t->kind = T_EOF;
    return;
  }
  size_t s = ps->pos;
  char c = q[s];
  if (looks_like_uuid(q + s, n - s)) {
    t->kind = T_UUID;
    ps->pos += 36;
  } else if (c == '0' && s + 1 < n && (q[s + 1] == 'x' || q[s + 1] == 'X')) {
    ps->pos += 2;
    while (ps->pos < n && isxdigit((unsigned char)q[ps->pos])) ps->pos++;
    t->kind = T_HEX;
  } else if (isdigit((unsigned char)c) || (c == '.' && s + 1 < n && isdigit((unsigned char)q[s + 1]))) {
    while (ps->pos < n && isdigit((unsigned char)q[ps->pos])) ps->pos++;
    if (ps->pos < n && q[ps->pos] == '.' && !(ps->pos + 1 < n && q[ps->pos + 1] == '.')) {
      ps->pos++;
      while (ps->pos < n && isdigit((unsigned char)q[ps->pos])) ps->pos++;
    }
    if (ps->pos < n && (q[ps->pos] == 'e' || q[ps->pos] == 'E')) {
      size_t save = ps->pos++;
      if (ps->pos < n && (q[ps->pos] == '+' || q[ps->pos] == '-')) ps->pos++;
      if (ps->pos < n && isdigit((unsigned char)q[ps->pos])) {
        while (ps->pos < n && isdigit((unsigned char)q[ps->pos])) ps->pos++;
      } else {
        ps->pos = save;
      }
    }
    t->kind = T_NUMBER;
    if (ps->pos < n && is_ident_char(q[ps->pos])) { /* e.g. a duration 1h30m: lex as one identifier-ish token */
      while (ps->pos < n && is_ident_char(q[ps->pos])) ps->pos++;
      t->kind = T_IDENT;
    }
  } else if (isalpha((unsigned char)c) || c == '_') {
    while (ps->pos < n && is_ident_char(q[ps->pos])) ps->pos++;
    t->kind = T_IDENT;
  } else if (c == '"') {
    scan_quoted(ps, t, '"', T_QIDENT, "unterminated quoted identifier");
  } else if (c == '\'') {
    scan_quoted(ps, t, '\'', T_STRING, "unterminated string literal");
  } else if (c == '$' && s + 1 < n && q[s + 1] == '$') {
    const char *end = NULL;
    for (size_t i = s + 2; i + 1 < n; i++)
      if (q[i] == '$' && q[i + 1] == '$') {
        end = q + i;
        break;
      }
    if (!end) {
      fail(ps, "%s", "unterminated $$ string");
      t->kind = T_EOF;
      return;
    }
    t->kind = T_STRING;
    t->value = q + s + 2;
    t->vlen = (size_t)(end - (q + s + 2));
    ps->pos = (size_t)(end - q) + 2;
  } else if (c == '?') {
    t->kind = T_BIND;
    ps->pos++;
  } else if (c == ':' && s + 1 < n && (isalpha((unsigned char)q[s + 1]) || q[s + 1] == '"')) {
    ps->pos++;
    size_t b = ps->pos;
    while (ps->pos < n && is_ident_char(q[ps->pos])) ps->pos++;
    t->kind = T_NAMED_BIND;
    char *name = sl_arena_strndup(ps->a, q + b, ps->pos - b);
    for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
    t->value = name;
    t->vlen = ps->pos - b;
  } else {
    t->kind = T_PUNCT;
    t->punct[0] = c;
    ps->pos++;
    if (ps->pos < n && ((c == '<' || c == '>' || c == '!') && q[ps->pos] == '=')) {
      t->punct[1] = '=';
      ps->pos++;
    }
  }
  t->len = (size_t)(q + ps->pos - t->p);
}

static bool is_kw(const parser_t *ps, const char *kw) {
  return ps->tok.kind == T_IDENT && ps->tok.len == strlen(kw) && strncasecmp(ps->tok.p, kw, ps->tok.len) == 0;
}
static bool accept_kw(parser_t *ps, const char *kw) {
  if (!is_kw(ps, kw)) return false;
  lex(ps);
  return true;
}
static bool is_punct(const parser_t *ps, const char *p) {
  return ps->tok.kind == T_PUNCT && strcmp(ps->tok.punct, p) == 0;
}
static bool accept_punct(parser_t *ps, const char *p) {
  if (!is_punct(ps, p)) return false;
  lex(ps);
  return true;
}
static const char *tok_text(parser_t *ps) {
  if (ps->tok.kind == T_EOF) return "<EOF>";
  return sl_arena_strndup(ps->a, ps->tok.p, ps->tok.len > 60 ? 60 : ps->tok.len);
}
static bool expect_kw(parser_t *ps, const char *kw) {
  if (accept_kw(ps, kw)) return true;
  fail(ps, "mismatched input '%s'", tok_text(ps));
  return false;
}
static bool expect_punct(parser_t *ps, const char *p) {
  if (accept_punct(ps, p)) return true;
  fail(ps, "mismatched input '%s'", tok_text(ps));
  return false;
}

/* Words that cannot be unquoted identifiers (a subset of Cassandra's reserved keywords). */
static const char *const reserved[] = {"select", "from", "where", "and", "insert", "into", "values", "update",
                                       "set", "delete", "create", "table", "keyspace", "primary", "using",
                                       "batch", "apply", "begin", "limit", "order", "by", "use", "drop", "alter",
                                       "with", "if", "in", "not", "null", "to", "truncate", "allow", "token",
                                       "add", "asc", "desc", "of", "schema", "columnfamily", "index", "on", NULL};

static bool is_reserved(const char *p, size_t n) {
  for (size_t i = 0; reserved[i]; i++)
    if (strlen(reserved[i]) == n && strncasecmp(reserved[i], p, n) == 0) return true;
  return false;
}

/* An identifier: unquoted folded to lower case, quoted kept. Non-reserved keywords are allowed unquoted. */
static const char *ident(parser_t *ps) {
  if (ps->tok.kind == T_QIDENT) {
    const char *v = sl_arena_strndup(ps->a, ps->tok.value, ps->tok.vlen);
    lex(ps);
    return v;
  }
  if (ps->tok.kind == T_IDENT && !is_reserved(ps->tok.p, ps->tok.len) && !isdigit((unsigned char)ps->tok.p[0])) {
    char *v = sl_arena_strndup(ps->a, ps->tok.p, ps->tok.len);
    for (char *p = v; *p; p++) *p = (char)tolower((unsigned char)*p);
    lex(ps);
    return v;
  }
  fail(ps, "no viable alternative at input '%s'", tok_text(ps));
  return NULL;
}

/* [ks.]name */
static bool qualified_name(parser_t *ps, const char **ks, const char **name) {
  const char *first = ident(ps);
  if (!first) return false;
  if (accept_punct(ps, ".")) {
    *ks = first;
    *name = ident(ps);
    return *name != NULL;
  }
  *ks = NULL;
  *name = first;
  return true;
}

static cql_term_t *new_term(parser_t *ps, cql_term_kind_t k) {
  cql_term_t *t = sl_arena_alloc(ps->a, sizeof *t);
  t->kind = k;
  return t;
}

static cql_term_t *term(parser_t *ps);

/* An unquoted duration literal: digits followed by units (1h30m), or ISO 8601 (P1DT2H, PT5M, P2W). */
static bool is_duration_tok(const tok_t *t) {
  if (t->kind != T_IDENT || t->len < 2) return false;
  if (isdigit((unsigned char)t->p[0])) return true;
  if (t->p[0] != 'P' && t->p[0] != 'p') return false;
  if (!isdigit((unsigned char)t->p[1]) && t->p[1] != 'T' && t->p[1] != 't') return false;
  for (size_t i = 1; i < t->len; i++)
    if (!isalnum((unsigned char)t->p[i])) return false;
  return true;
}

static bool term_list(parser_t *ps, cql_term_t *t, const char *close, bool map) {
  sl_vec_t v = {0};
  if (!accept_punct(ps, close)) {
    for (;;) {
      cql_term_t *item = term(ps);
      if (!item) return false;
      sl_vec_push(ps->a, &v, item);
      if (map || (t->kind == TERM_SET && v.n == 1 && is_punct(ps, ":"))) {
        if (t->kind == TERM_SET) {
          t->kind = TERM_MAP;
          map = true;
        }
        if (!expect_punct(ps, ":")) return false;
        cql_term_t *val = term(ps);
        if (!val) return false;
        sl_vec_push(ps->a, &v, val);
      }
      if (accept_punct(ps, ",")) continue;
      if (!expect_punct(ps, close)) return false;
      break;
    }
  }
  t->items = (cql_term_t **)v.items;
  t->nitems = v.n;
  return true;
}

static cql_term_t *term_inner(parser_t *ps) {
  tok_t tk = ps->tok;
  cql_term_t *t;
  switch (tk.kind) {
    case T_STRING:
      t = new_term(ps, TERM_STRING);
      t->text = tk.value;
      t->len = tk.vlen;
      lex(ps);
      return t;
    case T_NUMBER: {
      t = new_term(ps, TERM_INTEGER);
      for (size_t i = 0; i < tk.len; i++)
        if (tk.p[i] == '.' || tk.p[i] == 'e' || tk.p[i] == 'E') t->kind = TERM_FLOAT;
      t->text = tk.p;
      t->len = tk.len;
      lex(ps);
      return t;
    }
    case T_UUID:
      t = new_term(ps, TERM_UUID);
      t->text = tk.p;
      t->len = tk.len;
      lex(ps);
      return t;
    case T_HEX:
      t = new_term(ps, TERM_BLOB);
      t->text = tk.p + 2;
      t->len = tk.len - 2;
      lex(ps);
      return t;
    case T_BIND:
      t = new_term(ps, TERM_BIND);
      t->bind_index = ps->nbind++;
      lex(ps);
      return t;
    case T_NAMED_BIND:
      t = new_term(ps, TERM_BIND);
      t->bind_index = ps->nbind++;
      t->bind_name = tk.value;
      lex(ps);
      return t;
    case T_PUNCT:
      if (is_punct(ps, "-")) {
        lex(ps);
        if (ps->tok.kind == T_NUMBER || is_kw(ps, "infinity") || is_kw(ps, "nan") || is_duration_tok(&ps->tok)) {
          const char *end = ps->tok.p + ps->tok.len;
          cql_term_t *inner = term(ps);
          if (!inner) return NULL;
          inner->text = tk.p; /* include the sign */
          inner->len = (size_t)(end - tk.p);
          return inner;
        }
        fail(ps, "no viable alternative at input '%s'", tok_text(ps));
        return NULL;
      }
      if (accept_punct(ps, "[")) {
        t = new_term(ps, TERM_LIST);
        return term_list(ps, t, "]", false) ? t : NULL;
      }
      if (accept_punct(ps, "{")) {
        t = new_term(ps, TERM_SET);
        return term_list(ps, t, "}", false) ? t : NULL;
      }
      if (accept_punct(ps, "(")) {
        t = new_term(ps, TERM_TUPLE);
        return term_list(ps, t, ")", false) ? t : NULL;
      }
      break;
    case T_IDENT:
      if (accept_kw(ps, "null")) return new_term(ps, TERM_NULL);
      if (is_kw(ps, "true") || is_kw(ps, "false")) {
        t = new_term(ps, TERM_BOOL);
        t->boolean = is_kw(ps, "true");
        lex(ps);
        return t;
      }
      if (is_kw(ps, "nan") || is_kw(ps, "infinity")) {
        t = new_term(ps, TERM_FLOAT);
        t->text = tk.p;
        t->len = tk.len;
        lex(ps);
        return t;
      }
      if (is_duration_tok(&tk)) { /* duration like 1h30m, P1DT2H */
        t = new_term(ps, TERM_DURATION);
        t->text = tk.p;
        t->len = tk.len;
        lex(ps);
        return t;
      }
      {
        /* function call: name(args) or ks.name(args) */
        char *name = sl_arena_strndup(ps->a, tk.p, tk.len);
        for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
        lex(ps);
        if (accept_punct(ps, ".")) {
          if (ps->tok.kind != T_IDENT) break;
          name = sl_arena_strndup(ps->a, ps->tok.p, ps->tok.len);
          for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
          lex(ps);
        }
        if (!accept_punct(ps, "(")) {
          fail(ps, "no viable alternative at input '%s'", name);
          return NULL;
        }
        t = new_term(ps, TERM_FUNC);
        t->func = name;
        if (!strcmp(name, "cast")) {
          cql_term_t *arg = term(ps);
          if (!arg || !expect_kw(ps, "as")) return NULL;
          const char *type_start = ps->tok.p;
          while (ps->tok.kind != T_EOF && !is_punct(ps, ")")) lex(ps);
          t->cast_type = sl_arena_strndup(ps->a, type_start, (size_t)(ps->tok.p - type_start));
          t->items = sl_arena_alloc(ps->a, sizeof *t->items);
          t->items[0] = arg;
          t->nitems = 1;
          return expect_punct(ps, ")") ? t : NULL;
        }
        return term_list(ps, t, ")", false) ? t : NULL;
      }
    default: break;
  }
  fail(ps, "no viable alternative at input '%s'", tok_text(ps));
  return NULL;
}

#define MAX_DEPTH 64

static cql_term_t *term(parser_t *ps) {
  if (ps->depth >= MAX_DEPTH) {
    fail(ps, "%s", "expression nested too deeply");
    return NULL;
  }
  ps->depth++;
  cql_term_t *t = term_inner(ps);
  ps->depth--;
  return t;
}

static cql_relation_t *relation(parser_t *ps) {
  cql_relation_t *r = sl_arena_alloc(ps->a, sizeof *r);
  sl_vec_t cols = {0};
  if (accept_kw(ps, "token")) {
    r->token = true;
    if (!expect_punct(ps, "(")) return NULL;
    do {
      const char *c = ident(ps);
      if (!c) return NULL;
      sl_vec_push(ps->a, &cols, (void *)c);
    } while (accept_punct(ps, ","));
    if (!expect_punct(ps, ")")) return NULL;
  } else if (accept_punct(ps, "(")) {
    r->tuple = true;
    do {
      const char *c = ident(ps);
      if (!c) return NULL;
      sl_vec_push(ps->a, &cols, (void *)c);
    } while (accept_punct(ps, ","));
    if (!expect_punct(ps, ")")) return NULL;
  } else {
    const char *c = ident(ps);
    if (!c) return NULL;
    sl_vec_push(ps->a, &cols, (void *)c);
  }
  r->columns = (const char **)cols.items;
  r->ncolumns = cols.n;
  if (accept_punct(ps, "=")) r->op = OP_EQ;
  else if (accept_punct(ps, "<")) r->op = OP_LT;
  else if (accept_punct(ps, "<=")) r->op = OP_LE;
  else if (accept_punct(ps, ">")) r->op = OP_GT;
  else if (accept_punct(ps, ">=")) r->op = OP_GE;
  else if (accept_punct(ps, "!=")) r->op = OP_NE;
  else if (accept_kw(ps, "in")) r->op = OP_IN;
  else if (accept_kw(ps, "contains")) r->op = accept_kw(ps, "key") ? OP_CONTAINS_KEY : OP_CONTAINS;
  else {
    fail(ps, "no viable alternative at input '%s'", tok_text(ps));
    return NULL;
  }
  r->value = term(ps);
  if (!r->value) return NULL;
  if (r->op == OP_IN && r->value->kind != TERM_TUPLE && r->value->kind != TERM_BIND) {
    fail(ps, "%s", "IN expects a parenthesised list or a bind marker");
    return NULL;
  }
  return r;
}

static bool where_clause(parser_t *ps, sl_vec_t *where) {
  do {
    cql_relation_t *r = relation(ps);
    if (!r) return false;
    sl_vec_push(ps->a, where, r);
  } while (accept_kw(ps, "and"));
  return true;
}

static cql_selector_t *selector_inner(parser_t *ps);

static cql_selector_t *selector(parser_t *ps) {
  if (ps->depth >= MAX_DEPTH) {
    fail(ps, "%s", "selector nested too deeply");
    return NULL;
  }
  ps->depth++;
  cql_selector_t *s = selector_inner(ps);
  ps->depth--;
  return s;
}

static cql_selector_t *selector_inner(parser_t *ps) {
  cql_selector_t *s = sl_arena_alloc(ps->a, sizeof *s);
  if (ps->tok.kind == T_IDENT || ps->tok.kind == T_QIDENT) {
    bool quoted = ps->tok.kind == T_QIDENT;
    tok_t save_tok = ps->tok;
    size_t save_pos = ps->pos;
    if (!quoted) lex(ps);
    if (!quoted && is_punct(ps, "(")) {
      char *name = sl_arena_strndup(ps->a, save_tok.p, save_tok.len);
      for (char *p = name; *p; p++) *p = (char)tolower((unsigned char)*p);
      lex(ps);
      if (!strcmp(name, "count") && accept_punct(ps, "*")) {
        s->kind = SEL_COUNT_STAR;
        s->name = "count";
        if (!expect_punct(ps, ")")) return NULL;
        return s;
      }
      s->kind = SEL_FUNC;
      s->name = name;
      sl_vec_t args = {0};
      if (!accept_punct(ps, ")")) {
        do {
          cql_selector_t *a = selector(ps);
          if (!a) return NULL;
          sl_vec_push(ps->a, &args, a);
        } while (accept_punct(ps, ","));
        if (!expect_punct(ps, ")")) return NULL;
      }
      s->args = (cql_selector_t **)args.items;
      s->nargs = args.n;
      return s;
    }
    ps->tok = save_tok;
    ps->pos = save_pos;
    s->kind = SEL_COLUMN;
    s->name = ident(ps);
    return s->name ? s : NULL;
  }
  fail(ps, "no viable alternative at input '%s'", tok_text(ps));
  return NULL;
}

static cql_stmt_t *new_stmt(parser_t *ps, cql_stmt_kind_t k) {
  cql_stmt_t *s = sl_arena_alloc(ps->a, sizeof *s);
  s->kind = k;
  return s;
}

static cql_stmt_t *parse_select(parser_t *ps) {
  cql_stmt_t *s = new_stmt(ps, STMT_SELECT);
  if (accept_kw(ps, "json")) s->json = true;
  if (accept_kw(ps, "distinct")) s->distinct = true;
  if (accept_punct(ps, "*")) {
    cql_selector_t *st = sl_arena_alloc(ps->a, sizeof *st);
    st->kind = SEL_STAR;
    sl_vec_push(ps->a, &s->selectors, st);
  } else {
    do {
      cql_selector_t *sel = selector(ps);
      if (!sel) return NULL;
      if (accept_kw(ps, "as")) {
        sel->alias = ident(ps);
        if (!sel->alias) return NULL;
      }
      sl_vec_push(ps->a, &s->selectors, sel);
    } while (accept_punct(ps, ","));
  }
  if (!expect_kw(ps, "from") || !qualified_name(ps, &s->keyspace, &s->table)) return NULL;
  if (accept_kw(ps, "where") && !where_clause(ps, &s->where)) return NULL;
  if (accept_kw(ps, "group")) {
    fail(ps, "%s", "GROUP BY is not supported yet");
    return NULL;
  }
  if (accept_kw(ps, "order")) {
    if (!expect_kw(ps, "by")) return NULL;
    do {
      const char *c = ident(ps);
      if (!c) return NULL;
      if (s->order_by.n >= 8) {
        fail(ps, "%s", "too many ORDER BY columns");
        return NULL;
      }
      bool desc = false;
      if (accept_kw(ps, "desc")) desc = true;
      else accept_kw(ps, "asc");
      s->order_desc[s->order_by.n] = desc;
      sl_vec_push(ps->a, &s->order_by, (void *)c);
    } while (accept_punct(ps, ","));
  }
  if (accept_kw(ps, "per")) {
    if (!expect_kw(ps, "partition") || !expect_kw(ps, "limit")) return NULL;
    if (!(s->per_partition_limit = term(ps))) return NULL;
  }
  if (accept_kw(ps, "limit") && !(s->limit = term(ps))) return NULL;
  if (accept_kw(ps, "allow")) {
    if (!expect_kw(ps, "filtering")) return NULL;
    s->allow_filtering = true;
  }
  return s;
}

static bool using_clause(parser_t *ps, cql_stmt_t *s) {
  if (!accept_kw(ps, "using")) return true;
  do {
    if (accept_kw(ps, "ttl")) {
      if (!(s->ttl = term(ps))) return false;
    } else if (accept_kw(ps, "timestamp")) {
      if (!(s->timestamp = term(ps))) return false;
    } else {
      fail(ps, "mismatched input '%s' expecting TTL or TIMESTAMP", tok_text(ps));
      return false;
    }
  } while (accept_kw(ps, "and"));
  return true;
}

static cql_stmt_t *parse_insert(parser_t *ps) {
  cql_stmt_t *s = new_stmt(ps, STMT_INSERT);
  if (!expect_kw(ps, "into") || !qualified_name(ps, &s->keyspace, &s->table)) return NULL;
  if (accept_kw(ps, "json")) { /* INSERT INTO t JSON '{...}' | ? [DEFAULT NULL | UNSET] */
    s->json = true;
    if (!(s->json_value = term(ps))) return NULL;
    if (accept_kw(ps, "default")) {
      if (accept_kw(ps, "unset")) s->json_default_unset = true;
      else if (!expect_kw(ps, "null")) return NULL;
    }
  } else {
  if (!expect_punct(ps, "(")) return NULL;
  do {
    const char *c = ident(ps);
    if (!c) return NULL;
    sl_vec_push(ps->a, &s->columns, (void *)c);
  } while (accept_punct(ps, ","));
  if (!expect_punct(ps, ")") || !expect_kw(ps, "values") || !expect_punct(ps, "(")) return NULL;
  do {
    cql_term_t *t = term(ps);
    if (!t) return NULL;
    sl_vec_push(ps->a, &s->values, t);
  } while (accept_punct(ps, ","));
  if (!expect_punct(ps, ")")) return NULL;
  }
  if (accept_kw(ps, "if")) {
    if (!expect_kw(ps, "not") || !expect_kw(ps, "exists")) return NULL;
    s->if_not_exists = true;
  }
  if (!using_clause(ps, s)) return NULL;
  return s;
}

static cql_stmt_t *parse_update(parser_t *ps) {
  cql_stmt_t *s = new_stmt(ps, STMT_UPDATE);
  if (!qualified_name(ps, &s->keyspace, &s->table)) return NULL;
  if (!using_clause(ps, s) || !expect_kw(ps, "set")) return NULL;
  do {
    cql_assignment_t *a = sl_arena_alloc(ps->a, sizeof *a);
    if (!(a->column = ident(ps))) return NULL;
    if (accept_punct(ps, "[")) {
      a->kind = ASSIGN_ELEMENT;
      if (!(a->key = term(ps)) || !expect_punct(ps, "]")) return NULL;
    }
    if (!expect_punct(ps, "=")) return NULL;
    /* c = c + x | c = c - x | c = x + c | c = x */
    if ((ps->tok.kind == T_IDENT || ps->tok.kind == T_QIDENT) && a->kind != ASSIGN_ELEMENT) {
      tok_t save = ps->tok;
      size_t save_pos = ps->pos;
      const char *other = ident(ps);
      if (other && !strcmp(other, a->column) && (is_punct(ps, "+") || is_punct(ps, "-"))) {
        a->kind = is_punct(ps, "+") ? ASSIGN_ADD : ASSIGN_SUB;
        lex(ps);
        if (!(a->value = term(ps))) return NULL;
        sl_vec_push(ps->a, &s->assignments, a);
        continue;
      }
      ps->err = NULL;
      ps->tok = save;
      ps->pos = save_pos;
    }
    if (!(a->value = term(ps))) return NULL;
    if (a->kind != ASSIGN_ELEMENT && accept_punct(ps, "+")) {
      const char *other = ident(ps);
      if (!other || strcmp(other, a->column) != 0) {
        fail(ps, "%s", "only 'col = x + col' is supported on the right-hand side");
        return NULL;
      }
      a->kind = ASSIGN_PREPEND;
    }
    sl_vec_push(ps->a, &s->assignments, a);
  } while (accept_punct(ps, ","));
  if (!expect_kw(ps, "where") || !where_clause(ps, &s->where)) return NULL;
  if (accept_kw(ps, "if")) {
    if (accept_kw(ps, "exists")) s->if_exists = true;
    else if (!where_clause(ps, &s->conditions)) return NULL;
  }
  return s;
}

static cql_stmt_t *parse_delete(parser_t *ps) {
  cql_stmt_t *s = new_stmt(ps, STMT_DELETE);
  if (!is_kw(ps, "from")) {
    do {
      const char *c = ident(ps);
      if (!c) return NULL;
      cql_term_t *key = NULL;
      if (accept_punct(ps, "[")) { /* element deletion: DELETE m[k] / l[i] */
        if (!(key = term(ps)) || !expect_punct(ps, "]")) return NULL;
      }
      sl_vec_push(ps->a, &s->columns, (void *)c);
      sl_vec_push(ps->a, &s->column_keys, key);
    } while (accept_punct(ps, ","));
  }
  if (!expect_kw(ps, "from") || !qualified_name(ps, &s->keyspace, &s->table)) return NULL;
  if (!using_clause(ps, s)) return NULL;
  if (!expect_kw(ps, "where") || !where_clause(ps, &s->where)) return NULL;
  if (accept_kw(ps, "if")) {
    if (accept_kw(ps, "exists")) s->if_exists = true;
    else if (!where_clause(ps, &s->conditions)) return NULL;
  }
  return s;
}

static bool if_not_exists(parser_t *ps, cql_stmt_t *s) {
  if (!accept_kw(ps, "if")) return true;
  if (!expect_kw(ps, "not") || !expect_kw(ps, "exists")) return false;
  s->if_not_exists = true;
  return true;
}
static bool if_exists(parser_t *ps, cql_stmt_t *s) {
  if (!accept_kw(ps, "if")) return true;
  if (!expect_kw(ps, "exists")) return false;
  s->if_exists = true;
  return true;
}

/* WITH name = value AND ... ; CLUSTERING ORDER BY and COMPACT STORAGE are handled here too. */
static bool with_options(parser_t *ps, cql_stmt_t *s) {
  do {
    if (accept_kw(ps, "clustering")) {
      if (!expect_kw(ps, "order") || !expect_kw(ps, "by") || !expect_punct(ps, "(")) return false;
      do {
        const char *c = ident(ps);
        if (!c) return false;
        if (s->clustering_order.n >= 64) {
          fail(ps, "%s", "too many clustering columns");
          return false;
        }
        bool desc = false;
        if (accept_kw(ps, "desc")) desc = true;
        else accept_kw(ps, "asc");
        s->clustering_desc[s->clustering_order.n] = desc;
        sl_vec_push(ps->a, &s->clustering_order, (void *)c);
      } while (accept_punct(ps, ","));
      if (!expect_punct(ps, ")")) return false;
      continue;
    }
    if (accept_kw(ps, "compact")) {
      if (!expect_kw(ps, "storage")) return false;
      s->compact_storage = true;
      continue;
    }
    cql_option_t *o = sl_arena_alloc(ps->a, sizeof *o);
    if (!(o->name = ident(ps)) || !expect_punct(ps, "=")) return false;
    if (!(o->value = term(ps))) return false;
    sl_vec_push(ps->a, &s->options, o);
  } while (accept_kw(ps, "and"));
  return true;
}

static cql_stmt_t *parse_create_table(parser_t *ps) {
  cql_stmt_t *s = new_stmt(ps, STMT_CREATE_TABLE);
  if (!if_not_exists(ps, s) || !qualified_name(ps, &s->keyspace, &s->table) || !expect_punct(ps, "(")) return NULL;
  do {
    if (is_punct(ps, ")")) break; /* trailing comma */
    if (accept_kw(ps, "primary")) {
      if (!expect_kw(ps, "key") || !expect_punct(ps, "(")) return NULL;
      if (accept_punct(ps, "(")) {
        do {
          const char *c = ident(ps);
          if (!c) return NULL;
          sl_vec_push(ps->a, &s->partition_key, (void *)c);
        } while (accept_punct(ps, ","));
        if (!expect_punct(ps, ")")) return NULL;
      } else {
        const char *c = ident(ps);
        if (!c) return NULL;
        sl_vec_push(ps->a, &s->partition_key, (void *)c);
      }
      while (accept_punct(ps, ",")) {
        const char *c = ident(ps);
        if (!c) return NULL;
        sl_vec_push(ps->a, &s->clustering_key, (void *)c);
      }
      if (!expect_punct(ps, ")")) return NULL;
      continue;
    }
    cql_coldef_t *c = sl_arena_alloc(ps->a, sizeof *c);
    if (!(c->name = ident(ps))) return NULL;
    /* the type: everything up to a ',' or ')' at depth 0, or STATIC / PRIMARY */
    const char *type_start = ps->tok.p;
    const char *type_end = type_start;
    int depth = 0;
    while (ps->tok.kind != T_EOF) {
      if (depth == 0 && (is_punct(ps, ",") || is_punct(ps, ")") || is_kw(ps, "static") || is_kw(ps, "primary")))
        break;
      if (is_punct(ps, "<")) depth++;
      if (is_punct(ps, ">")) depth--;
      type_end = ps->tok.p + ps->tok.len;
      lex(ps);
    }
    if (type_end == type_start) {
      fail(ps, "no viable alternative at input '%s'", tok_text(ps));
      return NULL;
    }
    c->type = sl_arena_strndup(ps->a, type_start, (size_t)(type_end - type_start));
    if (accept_kw(ps, "static")) c->is_static = true;
    if (accept_kw(ps, "primary")) {
      if (!expect_kw(ps, "key")) return NULL;
      c->primary_key = true;
    }
    sl_vec_push(ps->a, &s->coldefs, c);
  } while (accept_punct(ps, ","));
  if (!expect_punct(ps, ")")) return NULL;
  if (accept_kw(ps, "with") && !with_options(ps, s)) return NULL;
  return s;
}

static cql_stmt_t *parse_create(parser_t *ps) {
  if (accept_kw(ps, "keyspace") || accept_kw(ps, "schema")) {
    cql_stmt_t *s = new_stmt(ps, STMT_CREATE_KEYSPACE);
    if (!if_not_exists(ps, s) || !(s->keyspace = ident(ps))) return NULL;
    if (!expect_kw(ps, "with") || !with_options(ps, s)) return NULL;
    return s;
  }
  if (accept_kw(ps, "table") || accept_kw(ps, "columnfamily")) return parse_create_table(ps);
  if (accept_kw(ps, "custom") || is_kw(ps, "index")) {
    expect_kw(ps, "index");
    cql_stmt_t *s = new_stmt(ps, STMT_CREATE_INDEX);
    while (ps->tok.kind != T_EOF) lex(ps); /* accepted and ignored for now */
    return s;
  }
  fail(ps, "no viable alternative at input '%s'", tok_text(ps));
  return NULL;
}

static cql_stmt_t *parse_statement(parser_t *ps);

static cql_stmt_t *parse_batch(parser_t *ps) {
  cql_stmt_t *s = new_stmt(ps, STMT_BATCH);
  if (accept_kw(ps, "unlogged")) s->batch_type = 1;
  else if (accept_kw(ps, "counter")) s->batch_type = 2;
  else accept_kw(ps, "logged");
  if (!expect_kw(ps, "batch") || !using_clause(ps, s)) return NULL;
  while (!is_kw(ps, "apply")) {
    if (ps->tok.kind == T_EOF) {
      fail(ps, "%s", "missing APPLY BATCH");
      return NULL;
    }
    if (is_kw(ps, "begin")) { /* no nested batches (and no unbounded recursion) */
      fail(ps, "%s", "a BATCH cannot contain a BATCH");
      return NULL;
    }
    cql_stmt_t *inner = parse_statement(ps);
    if (!inner) return NULL;
    if (inner->kind != STMT_INSERT && inner->kind != STMT_UPDATE && inner->kind != STMT_DELETE) {
      fail(ps, "%s", "only INSERT, UPDATE and DELETE statements are allowed in a BATCH");
      return NULL;
    }
    sl_vec_push(ps->a, &s->statements, inner);
    while (accept_punct(ps, ";")) {
    }
  }
  lex(ps);
  if (!expect_kw(ps, "batch")) return NULL;
  return s;
}

static cql_stmt_t *parse_statement(parser_t *ps) {
  if (accept_kw(ps, "select")) return parse_select(ps);
  if (accept_kw(ps, "insert")) return parse_insert(ps);
  if (accept_kw(ps, "update")) return parse_update(ps);
  if (accept_kw(ps, "delete")) return parse_delete(ps);
  if (accept_kw(ps, "begin")) return parse_batch(ps);
  if (accept_kw(ps, "use")) {
    cql_stmt_t *s = new_stmt(ps, STMT_USE);
    s->keyspace = ident(ps);
    return s->keyspace ? s : NULL;
  }
  if (accept_kw(ps, "create")) return parse_create(ps);
  if (accept_kw(ps, "drop")) {
    if (accept_kw(ps, "keyspace") || accept_kw(ps, "schema")) {
      cql_stmt_t *s = new_stmt(ps, STMT_DROP_KEYSPACE);
      if (!if_exists(ps, s) || !(s->keyspace = ident(ps))) return NULL;
      return s;
    }
    if (accept_kw(ps, "table") || accept_kw(ps, "columnfamily")) {
      cql_stmt_t *s = new_stmt(ps, STMT_DROP_TABLE);
      if (!if_exists(ps, s) || !qualified_name(ps, &s->keyspace, &s->table)) return NULL;
      return s;
    }
  } else if (accept_kw(ps, "truncate")) {
    cql_stmt_t *s = new_stmt(ps, STMT_TRUNCATE);
    if (!accept_kw(ps, "table")) accept_kw(ps, "columnfamily");
    if (!qualified_name(ps, &s->keyspace, &s->table)) return NULL;
    return s;
  } else if (accept_kw(ps, "alter")) {
    if (accept_kw(ps, "keyspace") || accept_kw(ps, "schema")) {
      cql_stmt_t *s = new_stmt(ps, STMT_ALTER_KEYSPACE);
      if (!if_exists(ps, s) || !(s->keyspace = ident(ps))) return NULL;
      if (!expect_kw(ps, "with") || !with_options(ps, s)) return NULL;
      return s;
    }
    if (accept_kw(ps, "table") || accept_kw(ps, "columnfamily")) {
      cql_stmt_t *s = new_stmt(ps, STMT_ALTER_TABLE);
      if (!qualified_name(ps, &s->keyspace, &s->table)) return NULL;
      if (accept_kw(ps, "add")) {
        s->alter_op = 1;
        cql_stmt_t *tmp = s;
        /* one column: name type */
        if (!(tmp->alter_column = ident(ps))) return NULL;
        const char *type_start = ps->tok.p, *type_end = type_start;
        while (ps->tok.kind != T_EOF && !is_punct(ps, ";") && !is_kw(ps, "static")) {
          type_end = ps->tok.p + ps->tok.len;
          lex(ps);
        }
        s->alter_type = sl_arena_strndup(ps->a, type_start, (size_t)(type_end - type_start));
        return s;
      }
      if (accept_kw(ps, "drop")) {
        s->alter_op = 2;
        return (s->alter_column = ident(ps)) ? s : NULL;
      }
      if (accept_kw(ps, "with")) {
        s->alter_op = 3;
        return with_options(ps, s) ? s : NULL;
      }
    }
  }
  fail(ps, "no viable alternative at input '%s'", tok_text(ps));
  return NULL;
}

cql_stmt_t *sl_cql_parse(sl_arena_t *a, const char *query, size_t len, const char **err) {
  parser_t ps = {.a = a, .q = query, .len = len};
  lex(&ps);
  cql_stmt_t *s = parse_statement(&ps);
  if (s && !ps.err) {
    while (accept_punct(&ps, ";")) {
    }
    if (ps.tok.kind != T_EOF) {
      fail(&ps, "extraneous input '%s' expecting <EOF>", tok_text(&ps));
      s = NULL;
    }
  }
  if (ps.err || !s) {
    if (!ps.err) fail(&ps, "%s", "syntax error");
    *err = ps.err;
    return NULL;
  }
  s->nbind = ps.nbind;
  return s;
}
