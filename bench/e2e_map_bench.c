/* Micro-benchmark of the stream processor's per-record mapping (sl_pipeline_map) for bench/e2e.sh's pipeline: the
 * vehicles example on simulator records. Meant for callgrind, whose instruction counts are repeatable on a shared
 * machine:
 *   cc -O2 -g -Isrc bench/e2e_map_bench.c -o /tmp/map_bench $(sed 's/.*-o test_stream//' build/CMakeFiles/test_stream.dir/link.txt | sed 's|libsluice_lib.a|build/libsluice_lib.a|')
 *   valgrind --tool=callgrind /tmp/map_bench 20000 [fast|ref|gen]  # instructions / 20000 = per record
 * fast: sl_pipeline_map (single-pass decoder, jansson fallback); ref: jansson only; gen: only generates the
 * records (subtract it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sources/sim.h"
#include "stream/pipeline.h"
#include "up/examples.h"

int main(int argc, char **argv) {
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
  const char *mode = argc > 2 ? argv[2] : "fast";
  const char *yaml = sl_example_text("vehicles");
  sl_pipeline_t *p;
  size_t np;
  char err[256];
  if (!yaml || sl_pipelines_parse(yaml, strlen(yaml), "vehicles", &p, &np, err, sizeof err) != 0) return 1;
  /* the records first, so generating them is outside the measured loop's per-record cost */
  sl_sim_t *sim;
  if (sl_sim_create(SL_SIM_VEHICLES, 1000, 1, 1714564800000LL, 200000, &sim) != 0) return 1;
  sl_buf_t key, val, all;
  sl_buf_init(&key);
  sl_buf_init(&val);
  sl_buf_init(&all);
  size_t *off = malloc((n + 1) * sizeof *off);
  for (size_t i = 0; i < n; i++) {
    sl_sim_next(sim, &key, &val);
    off[i] = all.len;
    sl_buf_put(&all, val.data, val.len);
  }
  off[n] = all.len;
  sl_value_t *vals = calloc(p->ncols, sizeof *vals);
  sl_buf_t text;
  sl_buf_init(&text);
  sl_map_error_t e;
  size_t rows = 0;
  double check = 0;
  if (strcmp(mode, "gen") != 0) {
    for (size_t i = 0; i < n; i++) {
      text.len = 0;
      int rc = strcmp(mode, "ref") == 0
                   ? sl_pipeline_map_reference(p, all.data + off[i], off[i + 1] - off[i], "t", 0, (int64_t)i, vals,
                                               &text, &e)
                   : sl_pipeline_map(p, all.data + off[i], off[i + 1] - off[i], "t", 0, (int64_t)i, vals, &text, &e);
      rows += rc == SL_MAP_ROW;
      check += vals[4].v.d + (double)vals[2].v.i;
    }
  }
  printf("%s: %zu records, %zu rows, check %.6g\n", mode, n, rows, check);
  sl_buf_free(&text);
  free(vals);
  free(off);
  sl_buf_free(&key);
  sl_buf_free(&val);
  sl_buf_free(&all);
  sl_sim_destroy(sim);
  sl_pipelines_free(p, np);
  return 0;
}
