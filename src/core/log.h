/* Logging: leveled, component-prefixed lines on stderr. The level check happens before any formatting. */
#ifndef SL_CORE_LOG_H
#define SL_CORE_LOG_H

typedef enum { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG } sl_log_level_t;

extern sl_log_level_t sl_log_threshold;

void sl_log_set_level(sl_log_level_t level);
/* Parses "error", "warn", "info" or "debug"; returns 0 or -EINVAL. */
int sl_log_parse_level(const char *name, sl_log_level_t *out);
void sl_log_write(sl_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SL_LOG(level, comp, ...)                                                                   \
  do {                                                                                             \
    if ((level) <= sl_log_threshold) sl_log_write((level), (comp), __VA_ARGS__);                   \
  } while (0)
#define SL_ERROR(comp, ...) SL_LOG(SL_LOG_ERROR, comp, __VA_ARGS__)
#define SL_WARN(comp, ...) SL_LOG(SL_LOG_WARN, comp, __VA_ARGS__)
#define SL_INFO(comp, ...) SL_LOG(SL_LOG_INFO, comp, __VA_ARGS__)
#define SL_DEBUG(comp, ...) SL_LOG(SL_LOG_DEBUG, comp, __VA_ARGS__)

#endif
