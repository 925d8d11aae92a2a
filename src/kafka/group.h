/* The consumer-group coordinator of this single broker: group membership (JoinGroup, SyncGroup, Heartbeat,
 * LeaveGroup) and committed offsets (OffsetCommit, OffsetFetch), stored durably under <data_dir>/groups.
 * The handlers (join_group.c, sync_group.c, ...) call into it; it runs on the loop thread. */
#ifndef SL_KAFKA_GROUP_H
#define SL_KAFKA_GROUP_H

#include "kafka/broker_internal.h"

/* Loads committed offsets from disk. Returns 0 or a negative errno. */
int sl_groups_open(sl_broker_t *b, sl_group_coordinator_t **out);
/* Answers parked joins/syncs (with an error), stops timers, frees everything. Timers close asynchronously: the
 * loop must run afterwards. */
void sl_groups_close(sl_group_coordinator_t *g);

/* DescribeGroups v0–4 (api key 15, first flexible version 5): implemented in describe_groups.c; needs an entry in
 * the dispatch table (kafkajs admin.setOffsets() depends on it). */
int sl_kafka_handle_describe_groups(sl_kafka_request_t *req);

#endif
