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

void *sl_arena_alloc(sl_arena_t *a, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (n == 0) n = 16;
  sl_arena_chunk_t *c = a->head;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > CHUNK_SIZE / 2 ? n : CHUNK_SIZE;
    c = malloc(sizeof *c + cap);
    if (!c) abort();
    c->used = 0;
    c->cap = cap;
    if (n > CHUNK_SIZE / 2 && a->head) { /* big block: keep the current chunk in front for small ones */
      c->next = a->head->next;
      a->head->next = c;
    } else {
      c->next = a->head;
      a->head = c;
    }
  }
  void *p = c->data + c->used;
  c->used += n;
  memset(p, 0, n);
  return p;
}

char *sl_arena_strndup(sl_arena_t *a, const char *s, size_t n) {
  char *p = sl_arena_alloc(a, n + 1);
  if (n) memcpy(p, s, n);
  p[n] = 0;
  return p;
}

void *sl_arena_memdup(sl_arena_t *a, const void *p, size_t n) {
  void *d = sl_arena_alloc(a, n);
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
