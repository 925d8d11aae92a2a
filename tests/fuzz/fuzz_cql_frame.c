/* libFuzzer target: CQL v4 frame decoding. Input = bytes a peer could send: the header, then the body read with
 * every notation the server uses (string maps, long strings, query parameters, values), the compressed-body
 * decoders, and type names/values. Nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>

#include "cql/compress.h"
#include "cql/proto.h"
#include "cql/types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cql_header_t h;
  if (cql_parse_header(data, size, 1u << 20, &h) != CQL_HEADER_OK) return 0;
  const uint8_t *body = data + CQL_HEADER_LEN;
  size_t len = size - CQL_HEADER_LEN;
  if (h.length < len) len = h.length;
  sl_reader_t r;
  /* STARTUP / REGISTER bodies */
  sl_reader_init(&r, body, len);
  sl_slice_t v;
  cql_string_map_get(&r, "CQL_VERSION", &v);
  uint16_t n = cql_read_list_count(&r, 2);
  for (uint16_t i = 0; i < n && !r.err; i++) cql_read_string(&r);
  /* QUERY: long string + parameters + values */
  sl_reader_init(&r, body, len);
  cql_read_long_string(&r);
  cql_read_short(&r);
  uint8_t flags = cql_read_byte(&r);
  if (flags & CQL_QFLAG_VALUES) {
    uint16_t nv = cql_read_list_count(&r, 4);
    for (uint16_t i = 0; i < nv && !r.err; i++) {
      if (flags & CQL_QFLAG_NAMES_FOR_VALUES) cql_read_string(&r);
      cql_read_value(&r);
    }
  }
  if (flags & CQL_QFLAG_PAGING_STATE) cql_read_bytes(&r, NULL);
  cql_read_short_bytes(&r);
  /* compressed bodies */
  sl_buf_t out;
  sl_buf_init(&out);
  cql_decompress(CQL_COMPRESSION_LZ4, body, len, 1u << 20, &out);
  out.len = 0;
  cql_decompress(CQL_COMPRESSION_SNAPPY, body, len, 1u << 20, &out);
  sl_buf_free(&out);
  /* a type name from the body, then the rest validated as a value of that type */
  sl_reader_init(&r, body, len);
  sl_slice_t tn = cql_read_string(&r);
  sl_cql_type_t *t;
  if (!r.err && sl_cql_type_parse((const char *)tn.ptr, tn.len, &t) == 0) {
    sl_cql_value_validate(t, r.data + r.pos, sl_reader_remaining(&r));
    sl_buf_t name;
    sl_buf_init(&name);
    sl_cql_type_name(t, &name);
    sl_cql_type_write_option(&name, t);
    sl_buf_free(&name);
    sl_cql_type_free(t);
  }
  return 0;
}
