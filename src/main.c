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
#include "api/api.h"
#include "core/log.h"
#include "kafka/broker.h"
#include "shell/shell.h"
#include "sources/simulate.h"
#include "store/store.h"
#include "stream/stream.h"
#include "up/up.h"

#define SLUICE_VERSION "0.1.0"

/* A role as main.c sees it: its settings (one or more config sections), the command-line options that set
 * them, and start/stop on a loop. A role that finishes by itself (simulate with a count) calls done(app, status);
 * the others run until stopped by a signal. */
typedef void (*role_done_fn)(void *app, int status);
typedef struct {
  const sl_config_field_t *fields;
  const size_t *count;
  size_t size;
} section_t;
typedef struct {
  const char *option; /* --option VALUE */
  const char *key;    /* the setting it assigns */
  const char *help;
} alias_t;
enum { MAX_SECTIONS = 4 };
typedef struct {
  const char *command;
  const char *summary;
  section_t sections[MAX_SECTIONS];
  const alias_t *aliases; /* ends with {NULL} */
  int (*start)(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle);
  void (*stop)(void *handle);
} role_t;

static int broker_start(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle) {
  return sl_broker_start(loop, cfgs[0], (sl_broker_t **)handle);
}
static void broker_stop(void *handle) { sl_broker_stop(handle); }

static int store_start(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle) {
  return sl_store_start(loop, cfgs[0], (sl_store_t **)handle);
}
static void store_stop(void *handle) { sl_store_stop(handle); }

static int simulate_start(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle) {
  return sl_simulate_start(loop, cfgs[0], done, app, (sl_simulate_t **)handle);
}
static void simulate_stop(void *handle) { sl_simulate_stop(handle); }

static int stream_start(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle) {
  return sl_stream_start(loop, cfgs[0], (sl_stream_t **)handle);
}
static void stream_stop(void *handle) { sl_stream_stop(handle); }

static int api_start(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle) {
  return sl_api_start(loop, cfgs[0], (sl_api_t **)handle);
}
static void api_stop(void *handle) { sl_api_stop(handle); }

static int up_start(uv_loop_t *loop, void *const *cfgs, role_done_fn done, void *app, void **handle) {
  return sl_up_start(loop, cfgs[0], cfgs[1], cfgs[2], cfgs[3], (sl_up_t **)handle);
}
static void up_stop(void *handle) { sl_up_stop(handle); }

#define SECTION(prefix) {prefix##_config_fields, &prefix##_config_field_count, sizeof(prefix##_config_t)}
static const alias_t broker_aliases[] = {{"listen", "broker.listen", "where to listen (port 0 picks a free port)"},
                                         {"data-dir", "broker.data_dir", "where data lives"},
                                         {"ready-file", "broker.ready_file", "write HOST:PORT to FILE once listening"},
                                         {NULL, NULL, NULL}};
static const alias_t store_aliases[] = {{"listen", "store.listen", "where to listen (port 0 picks a free port)"},
                                        {"data-dir", "store.data_dir", "where data lives"},
                                        {"ready-file", "store.ready_file", "write HOST:PORT to FILE once listening"},
                                        {NULL, NULL, NULL}};
static const alias_t simulate_aliases[] = {
    {"brokers", "simulate.brokers", "Kafka bootstrap servers"},
    {"profile", "simulate.profile", "vehicles, wearables, users (comma-separated)"},
    {"topic", "simulate.topic", "topic (default: the profile's)"},
    {"devices", "simulate.devices", "devices per profile"},
    {"rate", "simulate.rate", "readings per second, e.g. 1000/s, or max"},
    {"count", "simulate.count", "stop after this many readings"},
    {"duration", "simulate.duration_ms", "stop after this long (e.g. 30s)"},
    {"seed", "simulate.seed", "random seed"},
    {"start-time", "simulate.start_time", "timestamp of the first reading"},
    {NULL, NULL, NULL}};
static const alias_t stream_aliases[] = {
    {"brokers", "stream.brokers", "Kafka bootstrap servers"},
    {"cql", "stream.cql", "CQL contact points host:port,..."},
    {"pipelines", "stream.pipelines", "pipeline YAML files, comma-separated"},
    {"ready-file", "stream.ready_file", "written once every pipeline is consuming"},
    {NULL, NULL, NULL}};
static const alias_t api_aliases[] = {{"listen", "api.listen", "where to listen (port 0 picks a free port)"},
                                      {"cql", "api.cql", "CQL contact points host:port,..."},
                                      {"web-dir", "api.web_dir", "directory of the built dashboard"},
                                      {"ready-file", "api.ready_file", "write HOST:PORT to FILE once listening"},
                                      {NULL, NULL, NULL}};
static const alias_t up_aliases[] = {{"data-dir", "up.data_dir", "where all data lives"},
                                     {"kafka-listen", "broker.listen", "Kafka listener HOST:PORT"},
                                     {"cql-listen", "store.listen", "CQL listener HOST:PORT"},
                                     {"http-listen", "up.http_listen", "HTTP listener: REST API and dashboard"},
                                     {"ready-file", "up.ready_file", "written with one \"service host:port\" line each"},
                                     {NULL, NULL, NULL}};

static const role_t roles[] = {
    {"up", "run everything in one process: broker, store, demo simulator, stream processor, REST API",
     {SECTION(sl_up), SECTION(sl_broker), SECTION(sl_store), SECTION(sl_stream)}, up_aliases, up_start, up_stop},
    {"broker", "run the Kafka-compatible log broker", {SECTION(sl_broker)}, broker_aliases, broker_start, broker_stop},
    {"store", "run the CQL-compatible store on RocksDB", {SECTION(sl_store)}, store_aliases, store_start, store_stop},
    {"stream", "run the stream processor (Kafka topics -> typed rows -> CQL tables)", {SECTION(sl_stream)},
     stream_aliases, stream_start, stream_stop},
    {"api", "run the REST API, live streams, metrics and dashboard (reads the store over CQL)", {SECTION(sl_api)},
     api_aliases, api_start, api_stop},
    {"simulate", "produce simulated device readings to Kafka", {SECTION(sl_simulate)}, simulate_aliases,
     simulate_start, simulate_stop},
};
enum { ROLE_COUNT = sizeof roles / sizeof roles[0] };

typedef struct {
  const role_t *role;
  void *handle;
  uv_signal_t sigint, sigterm;
  int signals;
  int status;
} app_t;

static void usage(FILE *out, const role_t *role, const sl_config_section_t *sections, size_t n) {
  fprintf(out, "usage: sluice <command> [options]\n\ncommands:\n");
  for (size_t i = 0; i < ROLE_COUNT; i++) fprintf(out, "  %-10s %s\n", roles[i].command, roles[i].summary);
  fprintf(out, "  %-10s %s\n", "cql", "the CQL shell (sluice cql --help)");
  fprintf(out, "  %-10s %s\n", "version", "print the version");
  if (!role) {
    fprintf(out, "\nsluice <command> --help lists the command's options and settings.\n");
    return;
  }
  fprintf(out, "\n%s options:\n", role->command);
  for (const alias_t *a = role->aliases; a->option; a++) {
    char name[64];
    snprintf(name, sizeof name, "--%s VALUE", a->option);
    fprintf(out, "  %-22s %s (sets %s)\n", name, a->help, a->key);
  }
  fprintf(out,
          "  --config FILE          YAML settings (nested keys, e.g. broker: {retention_ms: 1d})\n"
          "  --set KEY=VALUE        one setting, applied after the file (repeatable)\n"
          "  --log-level LEVEL      error, warn, info (default) or debug\n"
          "\nsettings:\n");
  sl_config_print_help(sections, n, out);
}

static void close_signals(app_t *app) {
  if (uv_is_closing((uv_handle_t *)&app->sigint)) return;
  uv_close((uv_handle_t *)&app->sigint, NULL);
  uv_close((uv_handle_t *)&app->sigterm, NULL);
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
  close_signals(app);
}

/* A role finished by itself (e.g. simulate reached its count): it has freed itself. */
static void on_role_done(void *arg, int status) {
  app_t *app = arg;
  app->status = status;
  app->handle = NULL;
  close_signals(app);
}

enum { OPT_CONFIG = 1000, OPT_SET, OPT_LOG_LEVEL, OPT_HELP, OPT_ALIAS = 2000 };

static int run_role(const role_t *role, int argc, char **argv) {
  void *cfgs[MAX_SECTIONS] = {0};
  sl_config_section_t sections[MAX_SECTIONS];
  size_t nsec = 0;
  int status = 2;
  for (; nsec < MAX_SECTIONS && role->sections[nsec].fields; nsec++) {
    cfgs[nsec] = calloc(1, role->sections[nsec].size);
    if (!cfgs[nsec]) goto done;
    sections[nsec] = (sl_config_section_t){role->sections[nsec].fields, *role->sections[nsec].count, cfgs[nsec]};
  }
  if (sl_config_defaults(sections, nsec) != 0) goto done;

  struct option opts[32];
  size_t nopt = 0;
  opts[nopt++] = (struct option){"config", required_argument, 0, OPT_CONFIG};
  opts[nopt++] = (struct option){"set", required_argument, 0, OPT_SET};
  opts[nopt++] = (struct option){"log-level", required_argument, 0, OPT_LOG_LEVEL};
  opts[nopt++] = (struct option){"help", no_argument, 0, OPT_HELP};
  for (int i = 0; role->aliases[i].option && nopt < 31; i++)
    opts[nopt++] = (struct option){role->aliases[i].option, required_argument, 0, OPT_ALIAS + i};
  opts[nopt] = (struct option){0, 0, 0, 0};

  /* The file is applied first and the command line after it, whatever their order on the line. */
  const char *config_path = NULL;
  optind = 1;
  for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
    if (c == OPT_CONFIG)
      config_path = optarg;
    else if (c == 'h' || c == OPT_HELP) {
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
    if (c >= OPT_ALIAS) {
      snprintf(assignment, sizeof assignment, "%s=%s", role->aliases[c - OPT_ALIAS].key, optarg);
      rc = sl_config_set(sections, nsec, assignment, err, sizeof err);
    } else if (c == OPT_SET) {
      rc = sl_config_set(sections, nsec, optarg, err, sizeof err);
    } else if (c == OPT_LOG_LEVEL) {
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
  uv_signal_init(loop, &app.sigint);
  uv_signal_init(loop, &app.sigterm);
  app.sigint.data = app.sigterm.data = &app;
  uv_signal_start(&app.sigint, on_signal, SIGINT);
  uv_signal_start(&app.sigterm, on_signal, SIGTERM);
  if (role->start(loop, cfgs, on_role_done, &app, &app.handle) != 0) {
    app.handle = NULL;
    close_signals(&app);
    uv_run(loop, UV_RUN_DEFAULT); /* let handles closed during the failed start finish */
    uv_loop_close(loop);
    status = 1;
    goto done;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(loop);
  if (rc != 0) SL_WARN("main", "event loop closed with handles still open: %s", uv_strerror(rc));
  status = app.status;

done:
  sl_config_free(sections, nsec);
  for (size_t i = 0; i < MAX_SECTIONS; i++) free(cfgs[i]);
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
