/* The API table. Version bounds follow the reference's §2: librdkafka 2.0.2 tests single versions (Produce v0 for
 * compression, FindCoordinator v0 for groups) and kafka-python needs Metadata v0, so old minimums stay in range.
 * Everything advertised is non-flexible except ApiVersions v3. */
#include "kafka/dispatch.h"

const sl_kafka_api_t sl_kafka_apis[] = {
    {KAFKA_API_PRODUCE, 0, 7, 9, "Produce", sl_kafka_handle_produce},
    {KAFKA_API_FETCH, 4, 11, 12, "Fetch", sl_kafka_handle_fetch},
    {KAFKA_API_LIST_OFFSETS, 1, 3, 6, "ListOffsets", sl_kafka_handle_list_offsets},
    {KAFKA_API_METADATA, 0, 6, 9, "Metadata", sl_kafka_handle_metadata},
    {KAFKA_API_OFFSET_COMMIT, 2, 7, 8, "OffsetCommit", sl_kafka_handle_offset_commit},
    {KAFKA_API_OFFSET_FETCH, 1, 5, 6, "OffsetFetch", sl_kafka_handle_offset_fetch},
    {KAFKA_API_FIND_COORDINATOR, 0, 2, 3, "FindCoordinator", sl_kafka_handle_find_coordinator},
    {KAFKA_API_JOIN_GROUP, 0, 5, 6, "JoinGroup", sl_kafka_handle_join_group},
    {KAFKA_API_HEARTBEAT, 0, 3, 4, "Heartbeat", sl_kafka_handle_heartbeat},
    {KAFKA_API_LEAVE_GROUP, 0, 1, 4, "LeaveGroup", sl_kafka_handle_leave_group},
    {KAFKA_API_SYNC_GROUP, 0, 3, 4, "SyncGroup", sl_kafka_handle_sync_group},
    {KAFKA_API_DESCRIBE_GROUPS, 0, 4, 5, "DescribeGroups", sl_kafka_handle_describe_groups},
    {KAFKA_API_LIST_GROUPS, 0, 2, 3, "ListGroups", sl_kafka_handle_list_groups},
    {KAFKA_API_SASL_HANDSHAKE, 0, 1, 127, "SaslHandshake", sl_kafka_handle_sasl_handshake},
    {KAFKA_API_API_VERSIONS, 0, 3, 3, "ApiVersions", sl_kafka_handle_api_versions},
    {KAFKA_API_CREATE_TOPICS, 0, 4, 5, "CreateTopics", sl_kafka_handle_create_topics},
    {KAFKA_API_DELETE_TOPICS, 0, 3, 4, "DeleteTopics", sl_kafka_handle_delete_topics},
    {KAFKA_API_INIT_PRODUCER_ID, 0, 1, 2, "InitProducerId", sl_kafka_handle_init_producer_id},
    {KAFKA_API_DESCRIBE_CONFIGS, 0, 2, 4, "DescribeConfigs", sl_kafka_handle_describe_configs},
    {KAFKA_API_ALTER_CONFIGS, 0, 1, 2, "AlterConfigs", sl_kafka_handle_alter_configs},
    {KAFKA_API_SASL_AUTHENTICATE, 0, 1, 2, "SaslAuthenticate", sl_kafka_handle_sasl_authenticate},
    {KAFKA_API_CREATE_PARTITIONS, 0, 1, 2, "CreatePartitions", sl_kafka_handle_create_partitions},
    {KAFKA_API_DELETE_GROUPS, 0, 1, 2, "DeleteGroups", sl_kafka_handle_delete_groups},
};

const size_t sl_kafka_api_count = sizeof sl_kafka_apis / sizeof sl_kafka_apis[0];

const sl_kafka_api_t *sl_kafka_api_find(int16_t api_key) {
  for (size_t i = 0; i < sl_kafka_api_count; i++) {
    if (sl_kafka_apis[i].api_key == api_key) return &sl_kafka_apis[i];
  }
  return NULL;
}
