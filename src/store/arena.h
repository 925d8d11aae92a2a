/* A per-request arena: many small allocations, one free. Statements, parse trees and result rows of one request
 * live here and die together, so the parser and executor never free piecemeal. Aborts on out-of-memory. */
#ifndef SL_STORE_ARENA_H
#define SL_STORE_ARENA_H
#include <stddef.h>

typedef struct sl_arena_chunk sl_arena_chunk_t;
typedef struct {
  sl_arena_chunk_t *head;
} sl_arena_t;

static inline void sl_arena_init(sl_arena_t *a) { a->head = NULL; }
void *sl_arena_alloc(sl_arena_t *a, size_t n);   /* zeroed, 16-byte aligned */
char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n);
void *sl_arena_memdup(sl_arena_t *a, const void *p, size_t n);
void sl_arena_free(sl_arena_t *a);

/* Growable array of pointers in an arena. */
typedef struct {
  void **items;
  size_t n, cap;
} sl_vec_t;
void sl_vec_push(sl_arena_t *a, sl_vec_t *v, void *item);

#endif
