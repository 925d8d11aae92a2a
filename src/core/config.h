/* Declarative configuration: each module describes its settings once in a table of sl_config_field_t, and that
 * table drives defaults, the YAML file, `--set key=value` overrides, validation and `--help`.
 *
 * Keys are dotted paths; in YAML they are nested mappings (`broker: {listen: ...}` is `broker.listen`). */
#ifndef SL_CORE_CONFIG_H
#define SL_CORE_CONFIG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
  SL_CONFIG_STRING, /* char * (owned by the target; free with sl_config_free) */
  SL_CONFIG_INT,    /* int64_t */
  SL_CONFIG_BOOL,   /* bool */
  /* A top-level key of the YAML file whose value (a list or mapping of any shape) its role parses itself: the
   * loader skips the value and stores the file's path (char *, like a string); `--set key=FILE` names another
   * file holding such a key. E.g. the stream processor's `pipelines:` list. */
  SL_CONFIG_DOCUMENT,
} sl_config_type_t;

typedef struct {
  const char *key;
  sl_config_type_t type;
  size_t offset; /* offsetof the field in the target struct */
  const char *default_value;
  int64_t min, max; /* bounds for SL_CONFIG_INT */
  const char *help;
} sl_config_field_t;

typedef struct {
  const sl_config_field_t *fields;
  size_t count;
  void *target;
} sl_config_section_t;

/* Sets every field to its default; string slots are overwritten without being freed, so the target may be
 * uninitialised. Returns 0 or -EINVAL (a bad default is a programming error). */
int sl_config_defaults(const sl_config_section_t *sections, size_t n);
/* Applies one "key=value". On failure returns -EINVAL and writes a message into err. */
int sl_config_set(const sl_config_section_t *sections, size_t n, const char *assignment, char *err, size_t errlen);
/* Loads a YAML file of nested mappings; unknown keys are errors. */
int sl_config_load_yaml(const sl_config_section_t *sections, size_t n, const char *path, char *err, size_t errlen);
void sl_config_free(const sl_config_section_t *sections, size_t n);
void sl_config_print_help(const sl_config_section_t *sections, size_t n, FILE *out);

#endif
