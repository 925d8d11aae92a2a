/* Cassandra's partitioner hash: Murmur3Partitioner.getToken over a serialized partition key.
 *
 * It is MurmurHash3 x64_128 (seed 0) with Cassandra's twist: the 1-15 tail bytes are sign-extended before mixing.
 * The token is the first 64-bit half as a signed integer, with INT64_MIN mapped to INT64_MAX. */
#ifndef SL_CQL_MURMUR3_H
#define SL_CQL_MURMUR3_H
#include <stddef.h>
#include <stdint.h>

int64_t sl_cql_murmur3_token(const void *key, size_t len);
/* The full 128-bit hash (Cassandra's variant, any seed), for ids that need more than 64 bits. */
void sl_cql_murmur3_128(const void *key, size_t len, uint64_t seed, uint64_t out[2]);

#endif
