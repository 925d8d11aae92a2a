/* Small file-system helpers shared by the roles. Each returns 0 or a negative errno. */
#ifndef SL_CORE_FS_H
#define SL_CORE_FS_H
#include <stddef.h>

/* mkdir -p with mode 0755. */
int sl_fs_mkdir_p(const char *path);
/* Replaces `path` with `data` atomically (write "path.tmp", fsync, rename), so readers never see half a file. */
int sl_fs_write_atomic(const char *path, const void *data, size_t len);

/* Writes "host:port\n" atomically: the ready file a role writes once it listens (tests and `up` wait for it). */
int sl_fs_write_ready_file(const char *path, const char *host, int port);

#endif
