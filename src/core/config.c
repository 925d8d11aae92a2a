/* Declarative configuration (see config.h). */
#include "core/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const sl_config_field_t *find_field(const sl_config_section_t *sections, size_t n, const char *key,
                                           void **target) {
  for (size_t s = 0; s < n; s++) {
    for (size_t i = 0; i < sections[s].count; i++) {
      if (strcmp(sections[s].fields[i].key, key) == 0) {
        *target = sections[s].target;
        return &sections[s].fields[i];
      }
    }
  }
  return NULL;
}

static int parse_int(const char *v, int64_t *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v) return -EINVAL;
  int64_t mult = 1;
  /* size and duration suffixes keep YAML files readable: 64MiB, 1GiB, 500ms, 30s, 7d */
  if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0) mult = 1;
  else if (strcmp(end, "KiB") == 0) mult = 1024;
  else if (strcmp(end, "MiB") == 0) mult = 1024 * 1024;
  else if (strcmp(end, "GiB") == 0) mult = 1024LL * 1024 * 1024;
  else if (strcmp(end, "s") == 0) mult = 1000;
  else if (strcmp(end, "m") == 0) mult = 60000;
  else if (strcmp(end, "h") == 0) mult = 3600000;
  else if (strcmp(end, "d") == 0) mult = 86400000;
  else return -EINVAL;
  *out = (int64_t)x * mult;
  return 0;
}

static int assign(const sl_config_field_t *f, void *target, const char *value, char *err, size_t errlen) {
  char *base = (char *)target + f->offset;
  switch (f->type) {
    case SL_CONFIG_STRING:
    case SL_CONFIG_DOCUMENT: {
      char **slot = (char **)base;
      char *copy = strdup(value);
      if (!copy) return -ENOMEM;
      free(*slot);
      *slot = copy;
      return 0;
    }
    case SL_CONFIG_INT: {
      int64_t x;
      if (parse_int(value, &x) != 0) {
        snprintf(err, errlen, "%s: '%s' is not an integer", f->key, value);
        return -EINVAL;
      }
      if (x < f->min || x > f->max) {
        snprintf(err, errlen, "%s: %" PRId64 " is outside [%" PRId64 ", %" PRId64 "]", f->key, x, f->min, f->max);
        return -EINVAL;
      }
      *(int64_t *)base = x;
      return 0;
    }
    case SL_CONFIG_BOOL: {
      bool *slot = (bool *)base;
      if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on") || !strcmp(value, "1")) *slot = true;
      else if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "off") || !strcmp(value, "0"))
        *slot = false;
      else {
        snprintf(err, errlen, "%s: '%s' is not a boolean", f->key, value);
        return -EINVAL;
      }
      return 0;
    }
  }
  return -EINVAL;
}

int sl_config_defaults(const sl_config_section_t *sections, size_t n) {
  char err[256];
  for (size_t s = 0; s < n; s++) {
    for (size_t i = 0; i < sections[s].count; i++) {
      const sl_config_field_t *f = &sections[s].fields[i];
      /* the target may be uninitialised: never free what a string slot holds before its first assignment */
      bool is_string = f->type == SL_CONFIG_STRING || f->type == SL_CONFIG_DOCUMENT;
      if (is_string) *(char **)((char *)sections[s].target + f->offset) = NULL;
      if (is_string && !f->default_value) continue;
      if (assign(f, sections[s].target, f->default_value, err, sizeof err) != 0) return -EINVAL;
    }
  }
  return 0;
}

int sl_config_set(const sl_config_section_t *sections, size_t n, const char *assignment, char *err, size_t errlen) {
  const char *eq = strchr(assignment, '=');
  if (!eq) {
    snprintf(err, errlen, "'%s' is not key=value", assignment);
    return -EINVAL;
  }
  char key[128];
  size_t klen = (size_t)(eq - assignment);
  if (klen >= sizeof key) {
    snprintf(err, errlen, "key too long in '%s'", assignment);
    return -EINVAL;
  }
  memcpy(key, assignment, klen);
  key[klen] = 0;
  void *target;
  const sl_config_field_t *f = find_field(sections, n, key, &target);
  if (!f) {
    snprintf(err, errlen, "unknown setting '%s'", key);
    return -EINVAL;
  }
  return assign(f, target, eq + 1, err, errlen);
}

int sl_config_load_yaml(const sl_config_section_t *sections, size_t n, const char *path, char *err, size_t errlen) {
  FILE *fp = fopen(path, "r");
  if (!fp) {
    snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return -errno;
  }
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, fp);
  /* A stack of key prefixes: each mapping level adds "key." */
  char prefix[256] = "";
  size_t prefix_lens[16];
  int depth = 0;
  bool expecting_key = true;
  char pending_key[128] = "";
  int rc = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&parser, &ev)) {
      snprintf(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
               parser.problem ? parser.problem : "YAML syntax error");
      rc = -EINVAL;
      break;
    }
    yaml_event_type_t type = ev.type;
    if (!expecting_key && depth == 1 &&
        (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT || type == YAML_SCALAR_EVENT)) {
      void *target;
      const sl_config_field_t *f = find_field(sections, n, pending_key, &target);
      if (f && f->type == SL_CONFIG_DOCUMENT) { /* the role parses this value itself: skip it */
        int open = type == YAML_SCALAR_EVENT ? 0 : 1;
        yaml_event_delete(&ev);
        while (open > 0 && rc == 0) {
          if (!yaml_parser_parse(&parser, &ev)) {
            snprintf(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "YAML syntax error");
            rc = -EINVAL;
            break;
          }
          if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) open++;
          else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) open--;
          yaml_event_delete(&ev);
        }
        if (rc == 0) rc = assign(f, target, path, err, errlen);
        if (rc != 0) break;
        expecting_key = true;
        continue;
      }
    }
    if (type == YAML_MAPPING_START_EVENT) {
      if (depth > 0) {
        if (depth >= 15 || strlen(prefix) + strlen(pending_key) + 2 > sizeof prefix) {
          snprintf(err, errlen, "%s: nesting too deep", path);
          rc = -EINVAL;
        } else {
          strcat(prefix, pending_key);
          strcat(prefix, ".");
        }
      }
      prefix_lens[depth < 16 ? depth : 15] = strlen(prefix);
      depth++;
      expecting_key = true;
    } else if (type == YAML_MAPPING_END_EVENT) {
      depth--;
      /* restore the parent's prefix: drop the last "key." */
      if (depth > 0) {
        size_t len = strlen(prefix);
        if (len) len--;
        while (len > 0 && prefix[len - 1] != '.') len--;
        prefix[len] = 0;
      }
      expecting_key = true;
    } else if (type == YAML_SCALAR_EVENT) {
      const char *value = (const char *)ev.data.scalar.value;
      if (expecting_key) {
        snprintf(pending_key, sizeof pending_key, "%s", value);
        expecting_key = false;
      } else {
        char full[400];
        snprintf(full, sizeof full, "%s%s", prefix, pending_key);
        void *target;
        const sl_config_field_t *f = find_field(sections, n, full, &target);
        if (!f) {
          snprintf(err, errlen, "%s:%zu: unknown setting '%s'", path, ev.start_mark.line + 1, full);
          rc = -EINVAL;
        } else {
          rc = assign(f, target, value, err, errlen);
        }
        expecting_key = true;
      }
    } else if (type == YAML_SEQUENCE_START_EVENT) {
      snprintf(err, errlen, "%s:%zu: lists are not supported for '%s%s'", path, ev.start_mark.line + 1, prefix,
               pending_key);
      rc = -EINVAL;
    }
    yaml_event_delete(&ev);
    if (rc != 0 || type == YAML_STREAM_END_EVENT) break;
  }
  (void)prefix_lens;
  yaml_parser_delete(&parser);
  fclose(fp);
  return rc;
}

void sl_config_free(const sl_config_section_t *sections, size_t n) {
  for (size_t s = 0; s < n; s++) {
    for (size_t i = 0; i < sections[s].count; i++) {
      const sl_config_field_t *f = &sections[s].fields[i];
      if (f->type != SL_CONFIG_STRING && f->type != SL_CONFIG_DOCUMENT) continue;
      char **slot = (char **)((char *)sections[s].target + f->offset);
      free(*slot);
      *slot = NULL;
    }
  }
}

void sl_config_print_help(const sl_config_section_t *sections, size_t n, FILE *out) {
  for (size_t s = 0; s < n; s++) {
    for (size_t i = 0; i < sections[s].count; i++) {
      const sl_config_field_t *f = &sections[s].fields[i];
      fprintf(out, "  %-40s %s (default: %s)\n", f->key, f->help, f->default_value ? f->default_value : "none");
    }
  }
}
