/* Per-request arena (see arena.h). */
#include "store/arena.h"

#include <stdlib.h>
#include <string.h>

struct sl_arena_chunk {
  sl_arena_chunk_t *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
};

#define CHUNK_SIZE 16384
#define CHUNK_MAX (1u << 20)

/* Chunks double from CHUNK_SIZE up to CHUNK_MAX, so a request that builds a big result (thousands of rows)
 * makes few mallocs. Not zeroed. */
static void *arena_raw(sl_arena_t *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n == 0) n = 16;
  sl_arena_chunk_t *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t next = c && c->cap >= CHUNK_SIZE ? c->cap * 2 : CHUNK_SIZE;
    if (next > CHUNK_MAX) next = CHUNK_MAX;
    size_t cap = n > next / 2 ? n : next;
    c = malloc(sizeof *c + cap);
    if (!c) abort();
    c->used = 0;
    c->cap = cap;
    if (cap == n && a->head) { /* big block: keep the current chunk in front for small ones */
      c->next = a->head->next;
      a->head->next = c;
    } else {
      c->next = a->head;
      a->head = c;
    }
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

void *sl_arena_alloc(sl_arena_t *a, size_t n) {
  void *p = arena_raw(a, n);
  memset(p, 0, n ? n : 1);
  return p;
}

char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n) {
  char *p = arena_raw(a, n + 1);
  if (n) memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void *sl_arena_memdup(sl_arena_t *a, const void *p, size_t n) {
  void *d = arena_raw(a, n);
  if (n) memcpy(d, p, n);
  return d;
}

void sl_arena_free(sl_arena_t *a) {
  while (a->head) {
    sl_arena_chunk_t *n = a->head->next;
    free(a->head);
    a->head = n;
  }
}

void sl_vec_push(sl_arena_t *a, sl_vec_t *v, void *item) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    void **items = sl_arena_alloc(a, cap * sizeof *items);
    if (v->n) memcpy(items, v->items, v->n * sizeof *items);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->n++] = item;
}
