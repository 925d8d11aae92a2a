/* ListGroups v0–2 (api key 16): every group this coordinator knows, with its protocol type. Admin tools use it
 * (kafka-python's list_consumer_groups, kafkajs's admin.listGroups, confluent-kafka's list_groups).
 *   request:  (empty)
 *   response: throttle_time_ms (v1+), error_code, groups[group_id, protocol_type]
 * Listed: every group the coordinator holds (with members, or Empty with the protocol type its last members had,
 * as Kafka keeps it), and every group that only has committed offsets (since a restart, or committed without ever
 * joining: an empty protocol type, which admin clients read as a "simple" consumer group). Dead groups are not. */
#include <errno.h>

#include "kafka/codec.h"
#include "kafka/errors.h"
#include "kafka/group_internal.h"

typedef struct {
  sl_buf_t *out;
  sl_group_coordinator_t *gc;
  int32_t count;
} list_t;

static void add_group(list_t *l, sl_slice_t id, const char *protocol_type) {
  kafka_write_string(l->out, (const char *)id.ptr, id.len);
  kafka_write_cstring(l->out, protocol_type ? protocol_type : "");
  l->count++;
}

/* Groups known only by their committed offsets. */
static void add_offsets_group(void *arg, sl_slice_t id) {
  list_t *l = arg;
  if (!sl_group_find(l->gc, id)) add_group(l, id, NULL);
}

int sl_kafka_handle_list_groups(sl_kafka_request_t *req) {
  int16_t v = req->api_version;
  sl_group_coordinator_t *gc = sl_groups_of(req);
  sl_buf_t *b = &req->resp;
  if (v >= 1) kafka_write_int32(b, 0); /* throttle_time_ms */
  if (!gc || gc->closing) {
    kafka_write_int16(b, KAFKA_COORDINATOR_NOT_AVAILABLE);
    kafka_write_array_len(b, 0);
    sl_kafka_request_finish(req);
    return 0;
  }
  kafka_write_int16(b, KAFKA_NONE);
  size_t count_at = b->len;
  kafka_write_array_len(b, 0); /* patched below */
  list_t l = {b, gc, 0};
  for (size_t i = 0; i < gc->n_buckets; i++) {
    for (sl_group_t *g = gc->buckets[i]; g; g = g->hash_next) {
      if (g->state == SL_GROUP_DEAD) continue;
      add_group(&l, (sl_slice_t){(const uint8_t *)g->group_id, g->group_id_len},
                g->protocol_type ? g->protocol_type : g->last_protocol_type);
    }
  }
  sl_offset_store_each_group(gc->offsets, add_offsets_group, &l);
  sl_buf_patch_be32(b, count_at, (uint32_t)l.count);
  sl_kafka_request_finish(req);
  return 0;
}
