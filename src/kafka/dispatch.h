/* The one table of supported APIs: it routes requests and builds the ApiVersions answer. */
#ifndef SL_KAFKA_DISPATCH_H
#define SL_KAFKA_DISPATCH_H
#include <stddef.h>
#include <stdint.h>

#include "kafka/request.h"

enum {
  KAFKA_API_PRODUCE = 0,
  KAFKA_API_FETCH = 1,
  KAFKA_API_LIST_OFFSETS = 2,
  KAFKA_API_METADATA = 3,
  KAFKA_API_OFFSET_COMMIT = 8,
  KAFKA_API_OFFSET_FETCH = 9,
  KAFKA_API_FIND_COORDINATOR = 10,
  KAFKA_API_JOIN_GROUP = 11,
  KAFKA_API_HEARTBEAT = 12,
  KAFKA_API_LEAVE_GROUP = 13,
  KAFKA_API_SYNC_GROUP = 14,
  KAFKA_API_DESCRIBE_GROUPS = 15,
  KAFKA_API_LIST_GROUPS = 16,
  KAFKA_API_SASL_HANDSHAKE = 17,
  KAFKA_API_API_VERSIONS = 18,
  KAFKA_API_CREATE_TOPICS = 19,
  KAFKA_API_DELETE_TOPICS = 20,
  KAFKA_API_INIT_PRODUCER_ID = 22,
  KAFKA_API_DESCRIBE_CONFIGS = 32,
  KAFKA_API_ALTER_CONFIGS = 33,
  KAFKA_API_SASL_AUTHENTICATE = 36,
  KAFKA_API_CREATE_PARTITIONS = 37,
  KAFKA_API_DELETE_GROUPS = 42,
};

typedef struct {
  int16_t api_key;
  int16_t min_version;
  int16_t max_version;
  int16_t first_flexible; /* first version with flexible encoding (Apache Kafka's), even if not advertised;
                           * 127 for an API that never became flexible */
  const char *name;
  sl_kafka_handler_fn handler;
} sl_kafka_api_t;

extern const sl_kafka_api_t sl_kafka_apis[];
extern const size_t sl_kafka_api_count;

/* NULL for an unknown key. */
const sl_kafka_api_t *sl_kafka_api_find(int16_t api_key);

#endif
