/* Fuzzes the stream processor's single-pass JSON decoder (src/stream/json_scan.c) with jansson as the oracle:
 *   - whenever the scanner accepts a document, jansson (json_loadb with the processor's flags) accepts it as an
 *     object;
 *   - sl_pipeline_map (scanner first, jansson fallback) and sl_pipeline_map_reference (jansson only) agree on the
 *     outcome, every typed value (doubles to the bit, text byte for byte) and the dead-letter field, value and
 *     reason.
 * The pipeline (tests/unit/test_stream_json.h) has every column type, nested and array paths and templates.
 *   make fuzz && build-fuzz/fuzz_stream_json -max_len=4096 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../unit/test_stream_json.h"

static sl_pipeline_t *pipeline;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!pipeline) {
    size_t n;
    char err[256];
    if (sl_pipelines_parse(sj_yaml, strlen(sj_yaml), "fuzz", &pipeline, &n, err, sizeof err) != 0 || !pipeline->plan)
      abort();
  }
  int scan_rc, rc;
  if (!sj_scan_sound(pipeline, data, size, &scan_rc)) {
    fprintf(stderr, "scanner accepted a document jansson rejects\n");
    abort();
  }
  const char *diff = sj_compare(pipeline, data, size, &rc);
  if (diff) {
    fprintf(stderr, "fast path and jansson disagree: %s\n", diff);
    abort();
  }
  return 0;
}
