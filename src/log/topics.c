/* The topic registry: topics and their partitions as found in `<data_dir>/topics/<topic>-<n>/` directories.
 *
 * Topics are kept in an array of pointers sorted by name (binary search), so a sl_topic_t pointer stays valid until
 * that topic is deleted. Deletion first renames every partition directory to `<topic>-<n>.<unique>.deleted`
 * (atomic, so a crash never leaves a half-deleted topic that looks alive), then releases the partitions; the
 * directories go with the last reference, and leftovers from a crash are removed at the next open. */
#include "log/topics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/fs.h"
#include "core/log.h"
#include "log/segment.h"

#define MAX_TOPIC_NAME 249
#define MAX_PARTITIONS 10000

struct sl_topics {
  char *dir; /* <data_dir>/topics */
  int dirfd;
  sl_log_config_t cfg;
  sl_topic_t **v; /* sorted by name */
  size_t n, cap;
};

bool sl_topic_name_valid(const char *name, size_t len) {
  if (len == 0 || len > MAX_TOPIC_NAME) return false;
  if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) return false;
  for (size_t i = 0; i < len; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}

/* Compares a (name, len) key with a NUL-terminated topic name. */
static int cmp_name(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c) return c;
  return (alen > blen) - (alen < blen);
}

/* Position of `name` in the sorted array, or where it would go (*found false). */
static size_t topic_pos(const sl_topics_t *t, const char *name, size_t len, bool *found) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = cmp_name(name, len, t->v[mid]->name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  *found = false;
  return lo;
}

static void topic_free(sl_topic_t *tp) {
  if (!tp) return;
  for (int32_t i = 0; i < tp->partition_count; i++) sl_partition_release(tp->partitions[i]);
  free(tp->partitions);
  free(tp->name);
  free(tp);
}

static int topics_insert(sl_topics_t *t, sl_topic_t *tp) {
  bool found;
  size_t at = topic_pos(t, tp->name, strlen(tp->name), &found);
  if (found) return -EEXIST;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    sl_topic_t **v = realloc(t->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  memmove(t->v + at + 1, t->v + at, (t->n - at) * sizeof *t->v);
  t->v[at] = tp;
  t->n++;
  return 0;
}

static char *path_join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 2);
  if (!s) return NULL;
  memcpy(s, a, la);
  s[la] = '/';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

void sl_topic_overrides_clear(sl_topic_overrides_t *o) {
  o->retention_ms = o->retention_bytes = o->segment_bytes = o->segment_ms = SL_TOPIC_UNSET;
}

/* The broker-wide settings with a topic's own on top. */
static sl_log_config_t effective_config(const sl_topics_t *t, const sl_topic_overrides_t *o) {
  sl_log_config_t c = t->cfg;
  if (o->retention_ms != SL_TOPIC_UNSET) c.retention_ms = o->retention_ms;
  if (o->retention_bytes != SL_TOPIC_UNSET) c.retention_bytes = o->retention_bytes;
  if (o->segment_bytes != SL_TOPIC_UNSET) c.segment_bytes = (uint64_t)o->segment_bytes;
  if (o->segment_ms != SL_TOPIC_UNSET) c.segment_ms = o->segment_ms;
  return c;
}

/* `<topic>.config` beside the partition directories (a file, which the directory scan skips): one Kafka config
 * name=value per line. */
static const struct {
  const char *name;
  size_t offset;
} override_names[] = {
    {"retention.ms", offsetof(sl_topic_overrides_t, retention_ms)},
    {"retention.bytes", offsetof(sl_topic_overrides_t, retention_bytes)},
    {"segment.bytes", offsetof(sl_topic_overrides_t, segment_bytes)},
    {"segment.ms", offsetof(sl_topic_overrides_t, segment_ms)},
};

static char *config_path(const sl_topics_t *t, const char *topic) {
  char leaf[MAX_TOPIC_NAME + 16];
  snprintf(leaf, sizeof leaf, "%s.config", topic);
  return path_join(t->dir, leaf);
}

static int save_overrides(const sl_topics_t *t, const char *topic, const sl_topic_overrides_t *o) {
  char *path = config_path(t, topic);
  if (!path) return -ENOMEM;
  char text[512];
  size_t n = 0;
  for (size_t i = 0; i < sizeof override_names / sizeof override_names[0]; i++) {
    int64_t v = *(const int64_t *)((const char *)o + override_names[i].offset);
    if (v != SL_TOPIC_UNSET) n += (size_t)snprintf(text + n, sizeof text - n, "%s=%lld\n", override_names[i].name,
                                                   (long long)v);
  }
  int rc = 0;
  if (n) rc = sl_fs_write_atomic(path, text, n);
  else if (unlink(path) < 0 && errno != ENOENT) rc = -errno;
  free(path);
  return rc;
}

static void load_overrides(const sl_topics_t *t, const char *topic, sl_topic_overrides_t *o) {
  sl_topic_overrides_clear(o);
  char *path = config_path(t, topic);
  FILE *f = path ? fopen(path, "r") : NULL;
  char line[256];
  while (f && fgets(line, sizeof line, f)) {
    char *eq = strchr(line, '=');
    if (!eq) continue;
    *eq = 0;
    char *end;
    long long v = strtoll(eq + 1, &end, 10);
    bool known = false;
    for (size_t i = 0; i < sizeof override_names / sizeof override_names[0]; i++) {
      if (strcmp(line, override_names[i].name) != 0) continue;
      *(int64_t *)((char *)o + override_names[i].offset) = v;
      known = true;
    }
    if (!known) SL_WARN("log", "%s: ignoring unknown setting '%s'", path, line);
  }
  if (f) fclose(f);
  free(path);
}

/* Opens partitions 0..count-1 of a topic whose directories exist (or are created by sl_partition_open). */
/* Opens (creating) partitions partition_count..count-1 of tp, in index order, so a crash leaves the contiguous
 * 0..k-1 that recovery accepts; a partition that fails to open leaves no directory behind when creating. */
static int open_partitions(sl_topics_t *t, sl_topic_t *tp, int32_t count, bool creating) {
  sl_log_config_t cfg = effective_config(t, &tp->overrides);
  for (int32_t i = tp->partition_count; i < count; i++) {
    char leaf[MAX_TOPIC_NAME + 16];
    snprintf(leaf, sizeof leaf, "%s-%d", tp->name, (int)i);
    char *dir = path_join(t->dir, leaf);
    if (!dir) return -ENOMEM;
    int rc = sl_partition_open(dir, &cfg, &tp->partitions[i]);
    free(dir);
    if (rc < 0) {
      if (creating) sl_log_rmtree(t->dirfd, leaf);
      return rc;
    }
    tp->partition_count = i + 1;
  }
  return 0;
}

static int topic_open(sl_topics_t *t, const char *name, size_t len, int32_t count, bool creating,
                      const sl_topic_overrides_t *overrides, sl_topic_t **out) {
  sl_topic_t *tp = calloc(1, sizeof *tp);
  if (!tp) return -ENOMEM;
  int rc = 0;
  if (overrides) tp->overrides = *overrides;
  else sl_topic_overrides_clear(&tp->overrides);
  tp->name = strndup(name, len);
  tp->partitions = calloc((size_t)count, sizeof *tp->partitions);
  if (!tp->name || !tp->partitions) {
    rc = -ENOMEM;
    goto fail;
  }
  if ((rc = open_partitions(t, tp, count, creating)) < 0) goto fail; /* no half-created topic left behind */
  *out = tp;
  return 0;
fail:
  if (creating) {
    for (int32_t i = 0; i < tp->partition_count; i++) sl_partition_mark_deleted(tp->partitions[i]);
  }
  topic_free(tp);
  return rc;
}

typedef struct {
  char *topic;
  int32_t partition;
} entry_t;

static int cmp_entry(const void *a, const void *b) {
  const entry_t *x = a, *y = b;
  int c = strcmp(x->topic, y->topic);
  return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t ls = strlen(s), lx = strlen(suffix);
  return ls >= lx && memcmp(s + ls - lx, suffix, lx) == 0;
}

/* Parses `<topic>-<n>` by the last '-'. */
static bool parse_dir_name(const char *name, size_t *topic_len, int32_t *partition) {
  const char *dash = strrchr(name, '-');
  if (!dash || dash == name || dash[1] == '\0') return false;
  const char *d = dash + 1;
  if (strspn(d, "0123456789") != strlen(d) || strlen(d) > 5 || (d[0] == '0' && d[1] != '\0')) return false;
  long n = strtol(d, NULL, 10);
  if (n >= MAX_PARTITIONS) return false;
  *topic_len = (size_t)(dash - name);
  *partition = (int32_t)n;
  return sl_topic_name_valid(name, *topic_len);
}

static int scan_dirs(sl_topics_t *t, entry_t **out, size_t *n_out) {
  int fd = dup(t->dirfd);
  if (fd < 0) return -errno;
  DIR *d = fdopendir(fd);
  if (!d) {
    int err = -errno;
    close(fd);
    return err;
  }
  entry_t *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *name = e->d_name;
    if (name[0] == '.') continue; /* ".", "..", hidden temp files */
    struct stat st;
    if (fstatat(t->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) continue;
    if (has_suffix(name, ".deleted")) {
      /* A delete that a crash interrupted: finish it. */
      int r = sl_log_rmtree(t->dirfd, name);
      if (r < 0)
        SL_WARN("log", "cannot remove %s/%s: %s", t->dir, name, strerror(-r));
      else
        SL_INFO("log", "removed leftover deleted partition %s/%s", t->dir, name);
      continue;
    }
    size_t tlen;
    int32_t part;
    if (!parse_dir_name(name, &tlen, &part)) {
      SL_WARN("log", "ignoring unexpected directory %s/%s", t->dir, name);
      continue;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      entry_t *nv = realloc(v, cap * sizeof *nv);
      if (!nv) {
        rc = -ENOMEM;
        break;
      }
      v = nv;
    }
    v[n].topic = strndup(name, tlen);
    if (!v[n].topic) {
      rc = -ENOMEM;
      break;
    }
    v[n++].partition = part;
  }
  closedir(d);
  if (rc < 0) {
    for (size_t i = 0; i < n; i++) free(v[i].topic);
    free(v);
    return rc;
  }
  if (n) qsort(v, n, sizeof *v, cmp_entry);
  *out = v;
  *n_out = n;
  return 0;
}

static int mkdir_if_absent(const char *path) {
  if (mkdir(path, 0755) < 0 && errno != EEXIST) return -errno;
  return 0;
}

int sl_topics_open(const char *data_dir, const sl_log_config_t *cfg, sl_topics_t **out) {
  sl_topics_t *t = calloc(1, sizeof *t);
  if (!t) return -ENOMEM;
  entry_t *ents = NULL;
  size_t nents = 0;
  int rc = 0;
  t->dirfd = -1;
  if (cfg)
    t->cfg = *cfg;
  else
    sl_log_config_defaults(&t->cfg);
  t->dir = path_join(data_dir, "topics");
  if (!t->dir) {
    rc = -ENOMEM;
    goto fail;
  }
  if ((rc = mkdir_if_absent(data_dir)) < 0 || (rc = mkdir_if_absent(t->dir)) < 0) goto fail;
  t->dirfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (t->dirfd < 0) {
    rc = -errno;
    goto fail;
  }
  if ((rc = scan_dirs(t, &ents, &nents)) < 0) goto fail;
  for (size_t i = 0; i < nents;) {
    size_t j = i;
    bool contiguous = true;
    while (j < nents && strcmp(ents[j].topic, ents[i].topic) == 0) {
      if (ents[j].partition != (int32_t)(j - i)) contiguous = false;
      j++;
    }
    if (!contiguous) {
      SL_ERROR("log", "topic %s in %s: partition directories are not 0..n-1; topic skipped", ents[i].topic, t->dir);
    } else {
      sl_topic_t *tp;
      sl_topic_overrides_t o;
      load_overrides(t, ents[i].topic, &o);
      rc = topic_open(t, ents[i].topic, strlen(ents[i].topic), (int32_t)(j - i), false, &o, &tp);
      if (rc < 0) goto fail;
      if ((rc = topics_insert(t, tp)) < 0) {
        topic_free(tp);
        goto fail;
      }
    }
    i = j;
  }
  for (size_t i = 0; i < nents; i++) free(ents[i].topic);
  free(ents);
  SL_INFO("log", "opened %zu topic(s) in %s", t->n, t->dir);
  *out = t;
  return 0;
fail:
  SL_ERROR("log", "cannot open topics in %s: %s", data_dir, strerror(-rc));
  for (size_t i = 0; i < nents; i++) free(ents[i].topic);
  free(ents);
  for (size_t i = 0; i < t->n; i++) topic_free(t->v[i]);
  free(t->v);
  if (t->dirfd >= 0) close(t->dirfd);
  free(t->dir);
  free(t);
  return rc;
}

void sl_topics_close(sl_topics_t *t) {
  if (!t) return;
  for (size_t i = 0; i < t->n; i++) {
    sl_topic_t *tp = t->v[i];
    for (int32_t k = 0; k < tp->partition_count; k++) {
      int rc = sl_partition_close_clean(tp->partitions[k]);
      if (rc < 0) SL_WARN("log", "topic %s partition %d: no clean shutdown (%s)", tp->name, (int)k, strerror(-rc));
    }
    topic_free(tp);
  }
  free(t->v);
  close(t->dirfd);
  free(t->dir);
  free(t);
}

sl_topic_t *sl_topics_find(sl_topics_t *t, const char *name, size_t len) {
  if (!name) return NULL; /* a null topic name from the wire names no topic */
  bool found;
  size_t at = topic_pos(t, name, len, &found);
  return found ? t->v[at] : NULL;
}

int sl_topics_create(sl_topics_t *t, const char *name, size_t len, int32_t partitions, sl_topic_t **out) {
  return sl_topics_create_with(t, name, len, partitions, NULL, out);
}

int sl_topics_create_with(sl_topics_t *t, const char *name, size_t len, int32_t partitions,
                          const sl_topic_overrides_t *overrides, sl_topic_t **out) {
  if (!sl_topic_name_valid(name, len) || partitions < 1 || partitions > MAX_PARTITIONS) return -EINVAL;
  if (sl_topics_find(t, name, len)) return -EEXIST;
  char topic[MAX_TOPIC_NAME + 1];
  snprintf(topic, sizeof topic, "%.*s", (int)len, name);
  sl_topic_overrides_t none;
  sl_topic_overrides_clear(&none);
  /* the settings first (or a stale file from an earlier topic of that name gone): the partitions make it visible */
  int rc = save_overrides(t, topic, overrides ? overrides : &none);
  if (rc < 0) return rc;
  /* sl_partition_open creates each directory; the fsync below makes the new entries durable. */
  sl_topic_t *tp;
  rc = topic_open(t, name, len, partitions, true, overrides, &tp);
  if (rc < 0) {
    SL_ERROR("log", "cannot create topic %.*s: %s", (int)len, name, strerror(-rc));
    return rc;
  }
  if ((rc = sl_log_fsync_dir(t->dirfd)) < 0 || (rc = topics_insert(t, tp)) < 0) {
    for (int32_t i = 0; i < tp->partition_count; i++) sl_partition_mark_deleted(tp->partitions[i]);
    topic_free(tp);
    return rc;
  }
  SL_INFO("log", "created topic %s with %d partition(s)", tp->name, (int)partitions);
  if (out) *out = tp;
  return 0;
}

int sl_topics_set_overrides(sl_topics_t *t, sl_topic_t *tp, const sl_topic_overrides_t *overrides) {
  int rc = save_overrides(t, tp->name, overrides);
  if (rc == 0) rc = sl_log_fsync_dir(t->dirfd); /* the rename too, before the change is acknowledged */
  if (rc < 0) return rc;
  tp->overrides = *overrides;
  sl_log_config_t cfg = effective_config(t, &tp->overrides);
  for (int32_t i = 0; i < tp->partition_count; i++) sl_partition_set_config(tp->partitions[i], &cfg);
  return 0;
}

int sl_topics_add_partitions(sl_topics_t *t, const char *name, size_t len, int32_t total) {
  sl_topic_t *tp = sl_topics_find(t, name, len);
  if (!tp) return -ENOENT;
  if (total <= tp->partition_count || total > MAX_PARTITIONS) return -EINVAL;
  sl_partition_t **grown = realloc(tp->partitions, (size_t)total * sizeof *grown);
  if (!grown) return -ENOMEM;
  tp->partitions = grown;
  int rc = open_partitions(t, tp, total, true);
  int sync = sl_log_fsync_dir(t->dirfd);
  if (rc == 0) rc = sync;
  SL_INFO("log", "topic %s now has %d partition(s)", tp->name, (int)tp->partition_count);
  return rc;
}

int sl_topics_delete(sl_topics_t *t, const char *name, size_t len) {
  bool found;
  size_t at = topic_pos(t, name, len, &found);
  if (!found) return -ENOENT;
  sl_topic_t *tp = t->v[at];
  static uint32_t counter;
  uint32_t unique = (uint32_t)sl_wall_ms() * 2654435761u ^ ++counter;
  for (int32_t i = 0; i < tp->partition_count; i++) {
    char from[MAX_TOPIC_NAME + 16], to[NAME_MAX + 1];
    snprintf(from, sizeof from, "%s-%d", tp->name, (int)i);
    /* Keep the new name within NAME_MAX: the topic part is shortened if need be (only the suffix matters). */
    char suffix[48];
    int slen = snprintf(suffix, sizeof suffix, "-%d.%08x.deleted", (int)i, unique);
    snprintf(to, sizeof to, "%.*s%s", (int)(NAME_MAX - slen), tp->name, suffix);
    if (renameat(t->dirfd, from, t->dirfd, to) < 0) {
      /* Still removed at the last release, from its old path; only crash atomicity is lost for it. */
      SL_ERROR("log", "delete topic %s: rename %s: %s", tp->name, from, strerror(errno));
      continue;
    }
    char *path = path_join(t->dir, to);
    if (!path || sl_partition_set_dir(tp->partitions[i], path) < 0)
      SL_ERROR("log", "delete topic %s: out of memory; %s/%s stays until the next open", tp->name, t->dir, to);
    free(path);
  }
  char leaf[MAX_TOPIC_NAME + 16];
  snprintf(leaf, sizeof leaf, "%s.config", tp->name);
  if (unlinkat(t->dirfd, leaf, 0) < 0 && errno != ENOENT)
    SL_WARN("log", "delete topic %s: cannot remove %s: %s", tp->name, leaf, strerror(errno));
  int rc = sl_log_fsync_dir(t->dirfd);
  if (rc < 0) SL_WARN("log", "delete topic %s: fsync %s: %s", tp->name, t->dir, strerror(-rc));
  for (int32_t i = 0; i < tp->partition_count; i++) sl_partition_mark_deleted(tp->partitions[i]);
  memmove(t->v + at, t->v + at + 1, (t->n - at - 1) * sizeof *t->v);
  t->n--;
  SL_INFO("log", "deleted topic %s", tp->name);
  topic_free(tp);
  return 0;
}

size_t sl_topics_count(const sl_topics_t *t) {
  return t->n;
}

sl_topic_t *sl_topics_at(sl_topics_t *t, size_t i) {
  return i < t->n ? t->v[i] : NULL;
}

void sl_topics_enforce_retention(sl_topics_t *t, int64_t now_ms) {
  for (size_t i = 0; i < t->n; i++) {
    sl_topic_t *tp = t->v[i];
    for (int32_t k = 0; k < tp->partition_count; k++) {
      int rc = sl_partition_enforce_retention(tp->partitions[k], now_ms);
      if (rc < 0) SL_WARN("log", "retention of %s-%d failed: %s", tp->name, (int)k, strerror(-rc));
    }
  }
}
