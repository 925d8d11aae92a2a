/* The parsed form of a CQL statement. Everything lives in the request's arena; identifiers are already folded
 * (unquoted -> lower case, "quoted" kept), string literals already unescaped. */
#ifndef SL_STORE_CQL_AST_H
#define SL_STORE_CQL_AST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/arena.h"

typedef enum {
  TERM_NULL,
  TERM_STRING,   /* text: unescaped string */
  TERM_INTEGER,  /* text: digits with optional sign */
  TERM_FLOAT,    /* text: float literal, NaN, Infinity, -Infinity */
  TERM_BOOL,     /* boolean */
  TERM_UUID,     /* text: 36-char uuid */
  TERM_BLOB,     /* text: hex digits after 0x */
  TERM_BIND,     /* bind marker: index (and name for :name) */
  TERM_LIST,     /* [a, b] */
  TERM_SET,      /* {a, b} */
  TERM_MAP,      /* {k: v, ...}: items alternate key, value */
  TERM_TUPLE,    /* (a, b) */
  TERM_FUNC,     /* name(args) */
  TERM_DURATION, /* text: 1h30m, P1D */
} cql_term_kind_t;

typedef struct cql_term cql_term_t;
struct cql_term {
  cql_term_kind_t kind;
  const char *text;
  size_t len;
  bool boolean;
  int bind_index;
  const char *bind_name; /* :name markers */
  cql_term_t **items;
  size_t nitems;
  const char *func;      /* TERM_FUNC: lower-cased function name */
  const char *cast_type; /* cast(x AS type) */
};

typedef enum { OP_EQ, OP_LT, OP_LE, OP_GT, OP_GE, OP_NE, OP_IN, OP_CONTAINS, OP_CONTAINS_KEY } cql_op_t;

typedef struct {
  const char **columns; /* one, or several for token(a, b) / (a, b) > (x, y) */
  size_t ncolumns;
  bool token;            /* token(cols) op term */
  bool tuple;            /* (a, b) op (x, y) */
  cql_op_t op;
  cql_term_t *value;     /* for IN: a TERM_TUPLE of values, or a bind marker */
} cql_relation_t;

typedef enum { SEL_STAR, SEL_COLUMN, SEL_COUNT_STAR, SEL_FUNC } cql_selector_kind_t;
typedef struct cql_selector cql_selector_t;
struct cql_selector {
  cql_selector_kind_t kind;
  const char *name;  /* column name, or function name */
  cql_selector_t **args;
  size_t nargs;
  const char *alias;
};

typedef enum {
  STMT_SELECT,
  STMT_INSERT,
  STMT_UPDATE,
  STMT_DELETE,
  STMT_BATCH,
  STMT_USE,
  STMT_CREATE_KEYSPACE,
  STMT_ALTER_KEYSPACE,
  STMT_DROP_KEYSPACE,
  STMT_CREATE_TABLE,
  STMT_ALTER_TABLE,
  STMT_DROP_TABLE,
  STMT_TRUNCATE,
  STMT_CREATE_INDEX, /* accepted and ignored */
} cql_stmt_kind_t;

typedef struct {
  const char *name;
  cql_term_t *value; /* option value: string, number, bool, map literal */
} cql_option_t;

typedef struct {
  const char *name;
  const char *type; /* the type's text, parsed with sl_cql_type_parse */
  bool is_static;
  bool primary_key; /* "col type PRIMARY KEY" */
} cql_coldef_t;

typedef enum { ASSIGN_SET, ASSIGN_ADD, ASSIGN_SUB, ASSIGN_ELEMENT, ASSIGN_PREPEND } cql_assign_kind_t;
typedef struct {
  const char *column;
  cql_assign_kind_t kind;
  cql_term_t *key;   /* ASSIGN_ELEMENT: col[key] = value */
  cql_term_t *value;
} cql_assignment_t;

typedef struct cql_stmt cql_stmt_t;
struct cql_stmt {
  cql_stmt_kind_t kind;
  const char *keyspace; /* NULL = the session's keyspace */
  const char *table;
  bool if_not_exists, if_exists;
  /* SELECT */
  bool distinct, json, allow_filtering;
  sl_vec_t selectors;  /* cql_selector_t* */
  sl_vec_t where;      /* cql_relation_t* */
  sl_vec_t order_by;   /* const char* column; order_desc parallel */
  bool order_desc[8];
  cql_term_t *limit, *per_partition_limit;
  /* INSERT / UPDATE / DELETE */
  sl_vec_t columns;    /* INSERT: const char*; DELETE: const char* */
  sl_vec_t column_keys;/* DELETE: parallel to columns, cql_term_t* of c[key] or NULL */
  sl_vec_t values;     /* INSERT: cql_term_t* */
  sl_vec_t assignments;/* UPDATE: cql_assignment_t* */
  cql_term_t *ttl, *timestamp;
  cql_term_t *json_value;  /* INSERT JSON: the JSON text (a string or a bind marker) */
  bool json_default_unset; /* INSERT JSON ... DEFAULT UNSET (omitted columns untouched instead of null) */
  sl_vec_t conditions; /* IF col = x: cql_relation_t* */
  /* BATCH */
  int batch_type;      /* 0 logged, 1 unlogged, 2 counter */
  sl_vec_t statements; /* cql_stmt_t* */
  /* DDL */
  sl_vec_t coldefs;    /* cql_coldef_t* */
  sl_vec_t partition_key, clustering_key; /* const char* */
  sl_vec_t clustering_order;              /* const char* column; clustering_desc parallel */
  bool clustering_desc[64];
  sl_vec_t options;    /* cql_option_t* */
  bool compact_storage;
  const char *alter_column; /* ALTER TABLE ADD/DROP */
  const char *alter_type;
  int alter_op;             /* 1 add, 2 drop, 3 with options */
  int nbind;                /* bind markers in the statement */
};

/* Parses one statement (optionally ;-terminated). Returns the statement, or NULL with *err set to a message
 * ("line 1:12 mismatched input 'x' expecting ..." style) allocated in the arena. */
cql_stmt_t *sl_cql_parse(sl_arena_t *a, const char *query, size_t len, const char **err);

#endif
