/* The sluice command line: parses options and runs roles on one event loop. It composes roles; it implements
 * none. Each role contributes a config table and a start/stop pair (see role_t below). */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "core/config.h"
#include "core/log.h"
#include "kafka/broker.h"
#include "shell/shell.h"
#include "store/store.h"

#define SLUICE_VERSION "0.1.0"

/* A role as main.c sees it: its settings, a short-option mapping, and start/stop on a loop. */
typedef struct {
  const char *command;
  const char *summary;
  const sl_config_field_t *fields;
  const size_t *field_count;
  size_t config_size;
  const char *listen_key, *data_dir_key, *ready_file_key; /* what --listen/--data-dir/--ready-file set */
  int (*start)(uv_loop_t *loop, const void *cfg, void **handle);
  void (*stop)(void *handle);
} role_t;

static int broker_start(uv_loop_t *loop, const void *cfg, void **handle) {
  return sl_broker_start(loop, cfg, (sl_broker_t **)handle);
}
static void broker_stop(void *handle) {
  sl_broker_stop(handle);
}

static int store_start(uv_loop_t *loop, const void *cfg, void **handle) {
  return sl_store_start(loop, cfg, (sl_store_t **)handle);
}
static void store_stop(void *handle) {
  sl_store_stop(handle);
}

static const role_t roles[] = {
    {"broker", "run the Kafka-compatible log broker", sl_broker_config_fields, &sl_broker_config_field_count,
     sizeof(sl_broker_config_t), "broker.listen", "broker.data_dir", "broker.ready_file", broker_start, broker_stop},
    {"store", "run the CQL-compatible store on RocksDB", sl_store_config_fields, &sl_store_config_field_count,
     sizeof(sl_store_config_t), "store.listen", "store.data_dir", "store.ready_file", store_start, store_stop},
};
enum { ROLE_COUNT = sizeof roles / sizeof roles[0] };

typedef struct {
  const role_t *role;
  void *handle;
  uv_signal_t sigint, sigterm;
  int signals;
} app_t;

static void usage(FILE *out, const role_t *role, const sl_config_section_t *sections, size_t n) {
  fprintf(out, "usage: sluice <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < ROLE_COUNT; i++) fprintf(out, "  %-10s %s\n", roles[i].command, roles[i].summary);
  fprintf(out, "  %-10s %s\n", "version", "print the version");
  if (!role) {
    fprintf(out, "\nsluice <command> --help lists the command's options and settings.\n");
    return;
  }
  fprintf(out,
          "\n%s options:\n"
          "  --listen HOST:PORT     where to listen (port 0 picks a free port)\n"
          "  --data-dir DIR         where data lives\n"
          "  --config FILE          YAML settings (nested keys, e.g. broker: {retention_ms: 1d})\n"
          "  --set KEY=VALUE        one setting, applied after the file (repeatable)\n"
          "  --ready-file FILE      write HOST:PORT to FILE once listening\n"
          "  --log-level LEVEL      error, warn, info (default) or debug\n"
          "\nsettings:\n",
          role->command);
  sl_config_print_help(sections, n, out);
}

static void on_signal(uv_signal_t *s, int signum) {
  app_t *app = s->data;
  if (app->signals++ > 0) {
    SL_WARN("main", "second signal: exiting at once");
    exit(1);
  }
  SL_INFO("main", "received %s, stopping", signum == SIGINT ? "SIGINT" : "SIGTERM");
  if (app->handle) app->role->stop(app->handle);
  app->handle = NULL;
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
}

static int run_role(const role_t *role, int argc, char **argv) {
  void *cfg = calloc(1, role->config_size);
  if (!cfg) return 1;
  sl_config_section_t sections[] = {{role->fields, *role->field_count, cfg}};
  size_t nsec = sizeof sections / sizeof sections[0];
  int status = 2;
  if (sl_config_defaults(sections, nsec) != 0) goto done;

  static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                       {"data-dir", required_argument, 0, 'd'},
                                       {"config", required_argument, 0, 'c'},
                                       {"set", required_argument, 0, 's'},
                                       {"ready-file", required_argument, 0, 'r'},
                                       {"log-level", required_argument, 0, 'v'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  /* The file is applied first and the command line after it, whatever their order on the line. */
  const char *config_path = NULL;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
    if (c == 'c')
      config_path = optarg;
    else if (c == 'h') {
      usage(stdout, role, sections, nsec);
      status = 0;
      goto done;
    } else if (c == '?') {
      usage(stderr, role, sections, nsec);
      goto done;
    }
  }
  char err[512];
  if (config_path && sl_config_load_yaml(sections, nsec, config_path, err, sizeof err) != 0) {
    fprintf(stderr, "sluice: %s\n", err);
    goto done;
  }
  optind = 1;
  int rc = 0;
  for (int c; rc == 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
    char assignment[4200];
    const char *key = c == 'l'   ? role->listen_key
                      : c == 'd' ? role->data_dir_key
                      : c == 'r' ? role->ready_file_key
                                 : NULL;
    if (key) {
      snprintf(assignment, sizeof assignment, "%s=%s", key, optarg);
      rc = sl_config_set(sections, nsec, assignment, err, sizeof err);
    } else if (c == 's') {
      rc = sl_config_set(sections, nsec, optarg, err, sizeof err);
    } else if (c == 'v') {
      sl_log_level_t level;
      rc = sl_log_parse_level(optarg, &level);
      if (rc != 0)
        snprintf(err, sizeof err, "unknown log level '%s'", optarg);
      else
        sl_log_set_level(level);
    }
  }
  if (rc != 0) {
    fprintf(stderr, "sluice: %s\n", err);
    goto done;
  }
  if (optind < argc) {
    fprintf(stderr, "sluice: unexpected argument '%s'\n", argv[optind]);
    goto done;
  }

  signal(SIGPIPE, SIG_IGN);
  /* Every partition keeps its active segment open, and every client a socket: lift the soft limit to the hard one. */
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  uv_loop_t *loop = uv_default_loop();
  app_t app = {.role = role};
  if (role->start(loop, cfg, &app.handle) != 0) {
    uv_run(loop, UV_RUN_DEFAULT); /* let handles closed during the failed start finish */
    uv_loop_close(loop);
    status = 1;
    goto done;
  }
  uv_signal_init(loop, &app.sigint);
  uv_signal_init(loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  uv_run(loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(loop);
  if (rc != 0) SL_WARN("main", "event loop closed with handles still open: %s", uv_strerror(rc));
  status = 0;

done:
  sl_config_free(sections, nsec);
  free(cfg);
  return status;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout, NULL, NULL, 0);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("sluice %s\n", SLUICE_VERSION);
    return 0;
  }
  if (!strcmp(argv[1], "cql")) return sl_shell_main(argc - 1, argv + 1); /* the CQL shell (src/shell) */
  for (size_t i = 0; i < ROLE_COUNT; i++) {
    if (!strcmp(argv[1], roles[i].command)) return run_role(&roles[i], argc - 1, argv + 1);
  }
  fprintf(stderr, "sluice: unknown command '%s' (try sluice --help)\n", argv[1]);
  return 2;
}
