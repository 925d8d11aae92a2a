/* OffsetFetch v1–5 (api key 9): the committed positions of a group.
 *   request:  group_id, topics[name, partition_indexes[]] (null from v2: every partition the group committed)
 *   response: throttle_time_ms (v3+), topics[name, partitions[partition_index, committed_offset,
 *             committed_leader_epoch (v5+), metadata, error_code]], error_code (v2+)
 * Nothing committed (or an unknown group) is not an error: offset -1, and the client applies auto.offset.reset. */
#include <errno.h>
#include <string.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

static void write_partition(sl_buf_t *b, int16_t v, int32_t index, const sl_offset_entry_t *e, int16_t error) {
  kafka_write_int32(b, index);
  kafka_write_int64(b, e ? e->offset : -1);
  if (v >= 5) kafka_write_int32(b, e ? e->leader_epoch : -1);
  /* Like Kafka, a null committed metadata reads back as "" (NO_METADATA), as does no commit at all. */
  if (e && e->metadata)
    kafka_write_string(b, e->metadata, e->metadata_len);
  else
    kafka_write_string(b, "", 0);
  kafka_write_int16(b, error);
}

/* Every committed offset of the group, one entry per topic (the store's list is sorted by topic). */
static void write_all_committed(sl_buf_t *b, int16_t v, const sl_offset_store_t *store, sl_slice_t group_id) {
  const sl_offset_entry_t *e;
  size_t n = store ? sl_offset_store_list(store, group_id, &e) : 0;
  int32_t topics = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || e[i].topic_len != e[i - 1].topic_len || memcmp(e[i].topic, e[i - 1].topic, e[i].topic_len) != 0)
      topics++;
  kafka_write_array_len(b, topics);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && e[j].topic_len == e[i].topic_len && memcmp(e[j].topic, e[i].topic, e[i].topic_len) == 0) j++;
    kafka_write_string(b, e[i].topic, e[i].topic_len);
    kafka_write_array_len(b, (int32_t)(j - i));
    for (size_t k = i; k < j; k++) write_partition(b, v, e[k].partition, &e[k], KAFKA_NONE);
    i = j;
  }
}

int sl_kafka_handle_offset_fetch(sl_kafka_request_t *req) {
  sl_reader_t *r = &req->body;
  int16_t v = req->api_version;
  sl_slice_t group_id = kafka_read_string(r);
  /* A topic is at least a name (2) and a partition count (4). */
  int32_t nt = kafka_read_array_len(r, 6);
  if (r->err || !group_id.ptr || (nt < 0 && v < 2)) return -EBADMSG;
  sl_group_coordinator_t *gc = sl_groups_of(req);
  const sl_offset_store_t *store = gc && !gc->closing ? gc->offsets : NULL;
  int16_t error = store ? KAFKA_NONE : KAFKA_COORDINATOR_NOT_AVAILABLE;
  sl_buf_t *b = &req->resp;
  size_t start = b->len; /* to undo a partly written response if the request turns out malformed */
  if (v >= 3) kafka_write_int32(b, 0);
  if (nt < 0) {
    write_all_committed(b, v, store, group_id);
  } else {
    kafka_write_array_len(b, nt);
    for (int32_t t = 0; t < nt; t++) {
      sl_slice_t topic = kafka_read_string(r);
      int32_t np = kafka_read_array_len(r, 4);
      if (r->err || !topic.ptr || np < 0) {
        b->len = start;
        return -EBADMSG;
      }
      kafka_write_string(b, (const char *)topic.ptr, topic.len);
      kafka_write_array_len(b, np);
      for (int32_t i = 0; i < np; i++) {
        int32_t index = kafka_read_int32(r);
        const sl_offset_entry_t *e = store ? sl_offset_store_get(store, group_id, topic, index) : NULL;
        write_partition(b, v, index, e, error);
      }
    }
    if (r->err) {
      b->len = start;
      return -EBADMSG;
    }
  }
  if (v >= 2) kafka_write_int16(b, error);
  sl_kafka_request_finish(req);
  return 0;
}
