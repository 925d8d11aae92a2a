/* Lookup in the compiled-in example pipelines (the table itself is generated: see CMakeLists.txt). */
#include "up/examples.h"

#include <string.h>

const char *sl_example_text(const char *name) {
  for (const sl_example_t *e = sl_examples; e->name; e++) {
    if (!strcmp(e->name, name)) return e->text;
  }
  return NULL;
}
