/* libFuzzer target: the CQL statement parser, and the key codec decoder on the same bytes. */
#include <stddef.h>
#include <stdint.h>

#include "cql/types.h"
#include "store/cql_ast.h"
#include "store/keycodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sl_arena_t a;
  sl_arena_init(&a);
  const char *err = NULL;
  sl_cql_parse(&a, (const char *)data, size, &err);
  sl_arena_free(&a);
  static const uint16_t ids[] = {CQL_TYPE_INT, CQL_TYPE_VARCHAR, CQL_TYPE_UUID, CQL_TYPE_DOUBLE, CQL_TYPE_TIMEUUID};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    sl_cql_type_t t = {.id = ids[i]};
    sl_reader_t r;
    sl_reader_init(&r, data, size);
    sl_buf_t out;
    sl_buf_init(&out);
    size_t vlen;
    for (int k = 0; k < 4 && sl_key_decode(&r, &t, k & 1, &out, &vlen) == 0; k++) {
    }
    sl_buf_free(&out);
  }
  return 0;
}
