/* Load generator for bench/store.sh: IoT rows into `sluice store` (or any CQL v4 server) over the native protocol,
 * then query latencies. Self-contained (no project code) so the benchmark measures the server, not a client library
 * under development; the protocol is written here from the v4 spec.
 *
 *   store_load HOST PORT ingest DEVICES ROWS_PER_DEVICE CONNS BATCH DEPTH
 *       prepared INSERTs in UNLOGGED batches of BATCH rows of one partition (device), DEPTH batches in flight per
 *       connection; prints "rows=N seconds=S rows_per_s=R"
 *   store_load HOST PORT query DEVICES ROWS_PER_DEVICE N
 *       N times: one device's last hour (3,600 rows, one page) and one point read; prints p50/p99 in ms
 *
 * Table: bench.iot (id text, ts timestamp, adresse text, mileage bigint, fuel_level float, speed float,
 * longitude double, PRIMARY KEY (id, ts)); row i of device d has ts = BASE + i seconds. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BASE_MS 1700000000000LL

typedef struct {
  uint8_t *p;
  size_t len, cap;
} buf_t;

static void put(buf_t *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2 + 256;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void u8(buf_t *b, uint8_t v) { put(b, &v, 1); }
static void be16(buf_t *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(b, x, 2);
}
static void be32(buf_t *b, uint32_t v) {
  uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  put(b, x, 4);
}
static void be64(buf_t *b, uint64_t v) {
  be32(b, (uint32_t)(v >> 32));
  be32(b, (uint32_t)v);
}
static void str(buf_t *b, const char *s) {
  be16(b, (uint16_t)strlen(s));
  put(b, s, strlen(s));
}
static void lstr(buf_t *b, const char *s) {
  be32(b, (uint32_t)strlen(s));
  put(b, s, strlen(s));
}
static void value(buf_t *b, const void *p, size_t n) {
  be32(b, (uint32_t)n);
  put(b, p, n);
}
static uint32_t ld32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static size_t frame_begin(buf_t *b, int16_t stream, uint8_t op) {
  size_t at = b->len;
  u8(b, 4);
  u8(b, 0);
  be16(b, (uint16_t)stream);
  u8(b, op);
  be32(b, 0);
  return at;
}
static void frame_end(buf_t *b, size_t at) {
  uint32_t n = (uint32_t)(b->len - at - 9);
  uint8_t *p = b->p + at + 5;
  p[0] = (uint8_t)(n >> 24), p[1] = (uint8_t)(n >> 16), p[2] = (uint8_t)(n >> 8), p[3] = (uint8_t)n;
}

static void send_all(int fd, const void *p, size_t n) {
  const uint8_t *c = p;
  while (n) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w <= 0) {
      perror("send");
      exit(1);
    }
    c += w;
    n -= (size_t)w;
  }
}
static void recv_all(int fd, void *p, size_t n) {
  uint8_t *c = p;
  while (n) {
    ssize_t r = recv(fd, c, n, 0);
    if (r <= 0) {
      fprintf(stderr, "connection closed\n");
      exit(1);
    }
    c += r;
    n -= (size_t)r;
  }
}

/* Reads one response; returns its opcode, body in *body (malloc, caller frees). Exits on ERROR. */
static uint8_t read_frame(int fd, uint8_t **body, uint32_t *blen) {
  uint8_t h[9];
  recv_all(fd, h, 9);
  uint32_t n = ld32(h + 5);
  uint8_t *b = malloc(n + 1);
  if (!b) abort();
  recv_all(fd, b, n);
  if (h[4] == 0x00) {
    fprintf(stderr, "server error 0x%04x: %.*s\n", ld32(b), n > 6 ? (int)(n - 6) : 0, (char *)b + 6);
    exit(1);
  }
  *body = b;
  *blen = n;
  return h[4];
}

static const char *g_host;
static int g_port;

static int connect_ready(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
  inet_pton(AF_INET, g_host, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  buf_t b = {0};
  size_t at = frame_begin(&b, 0, 0x01);
  be16(&b, 1);
  str(&b, "CQL_VERSION");
  str(&b, "3.0.0");
  frame_end(&b, at);
  send_all(fd, b.p, b.len);
  free(b.p);
  uint8_t *body;
  uint32_t n;
  read_frame(fd, &body, &n);
  free(body);
  return fd;
}

static void simple(int fd, const char *q) {
  buf_t b = {0};
  size_t at = frame_begin(&b, 1, 0x07);
  lstr(&b, q);
  be16(&b, 0x0001); /* ONE */
  u8(&b, 0);
  frame_end(&b, at);
  send_all(fd, b.p, b.len);
  free(b.p);
  uint8_t *body;
  uint32_t n;
  read_frame(fd, &body, &n);
  free(body);
}

/* PREPARE; returns the id (16 bytes expected, up to 64). */
static size_t prepare(int fd, const char *q, uint8_t id[64]) {
  buf_t b = {0};
  size_t at = frame_begin(&b, 1, 0x09);
  lstr(&b, q);
  frame_end(&b, at);
  send_all(fd, b.p, b.len);
  free(b.p);
  uint8_t *body;
  uint32_t n;
  read_frame(fd, &body, &n);
  size_t idlen = (size_t)body[4] << 8 | body[5];
  if (idlen > 64) abort();
  memcpy(id, body + 6, idlen);
  free(body);
  return idlen;
}

static const char *INSERT_Q =
    "INSERT INTO bench.iot (id, ts, adresse, mileage, fuel_level, speed, longitude) VALUES (?, ?, ?, ?, ?, ?, ?)";

static void device_name(char *out, int d) { snprintf(out, 32, "vehicle-%06d", d); }

typedef struct {
  int first_dev, ndev, rows_per_dev, batch, depth;
  long rows;
} job_t;

static void add_row(buf_t *b, const uint8_t *id, size_t idlen, const char *dev, int i) {
  u8(b, 1);
  be16(b, (uint16_t)idlen);
  put(b, id, idlen);
  be16(b, 7);
  value(b, dev, strlen(dev));
  uint8_t x[8];
  int64_t ts = BASE_MS + (int64_t)i * 1000;
  for (int k = 0; k < 8; k++) x[k] = (uint8_t)((uint64_t)ts >> (56 - 8 * k));
  value(b, x, 8);
  static const char addr[] = "12 Rue de la Republique, Lyon";
  value(b, addr, sizeof addr - 1);
  int64_t mileage = 100000 + i;
  for (int k = 0; k < 8; k++) x[k] = (uint8_t)((uint64_t)mileage >> (56 - 8 * k));
  value(b, x, 8);
  float f = 50.0f - (float)(i % 50);
  uint32_t fb;
  memcpy(&fb, &f, 4);
  be32(b, 4);
  be32(b, fb);
  f = (float)(i % 130);
  memcpy(&fb, &f, 4);
  be32(b, 4);
  be32(b, fb);
  double lon = 4.83 + i * 1e-5;
  uint64_t db;
  memcpy(&db, &lon, 8);
  be32(b, 8);
  be64(b, db);
}

static void *ingest_thread(void *arg) {
  job_t *j = arg;
  int fd = connect_ready();
  uint8_t id[64];
  size_t idlen = prepare(fd, INSERT_Q, id);
  int inflight = 0;
  int16_t stream = 0;
  buf_t b = {0};
  for (int d = j->first_dev; d < j->first_dev + j->ndev; d++) {
    char dev[32];
    device_name(dev, d);
    for (int i = 0; i < j->rows_per_dev; i += j->batch) {
      int n = j->rows_per_dev - i < j->batch ? j->rows_per_dev - i : j->batch;
      b.len = 0;
      size_t at = frame_begin(&b, stream, 0x0D);
      stream = (int16_t)((stream + 1) & 0x7FFF);
      u8(&b, 1); /* UNLOGGED */
      be16(&b, (uint16_t)n);
      for (int k = 0; k < n; k++) add_row(&b, id, idlen, dev, i + k);
      be16(&b, 0x0001);
      u8(&b, 0);
      frame_end(&b, at);
      send_all(fd, b.p, b.len);
      j->rows += n;
      if (++inflight >= j->depth) {
        uint8_t *body;
        uint32_t len;
        read_frame(fd, &body, &len);
        free(body);
        inflight--;
      }
    }
  }
  while (inflight-- > 0) {
    uint8_t *body;
    uint32_t len;
    read_frame(fd, &body, &len);
    free(body);
  }
  free(b.p);
  close(fd);
  return NULL;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* EXECUTE with values; returns the row count of the result. */
static int32_t execute(int fd, const uint8_t *id, size_t idlen, const char *dev, int64_t ts) {
  buf_t b = {0};
  size_t at = frame_begin(&b, 2, 0x0A);
  be16(&b, (uint16_t)idlen);
  put(&b, id, idlen);
  be16(&b, 0x0001);
  u8(&b, 0x01 | 0x04); /* values, page size */
  be16(&b, 2);
  value(&b, dev, strlen(dev));
  uint8_t x[8];
  for (int k = 0; k < 8; k++) x[k] = (uint8_t)((uint64_t)ts >> (56 - 8 * k));
  value(&b, x, 8);
  be32(&b, 5000);
  frame_end(&b, at);
  send_all(fd, b.p, b.len);
  free(b.p);
  uint8_t *body;
  uint32_t n;
  read_frame(fd, &body, &n);
  /* kind, flags, column count, [paging state], [specs]; we only need the row count: skip metadata */
  size_t p = 4;
  uint32_t flags = ld32(body + p);
  uint32_t ncols = ld32(body + p + 4);
  p += 8;
  if (flags & 0x0002) {
    uint32_t l = ld32(body + p);
    p += 4 + l;
  }
  if (!(flags & 0x0004)) {
    if (flags & 0x0001) {
      p += 2 + ((size_t)body[p] << 8 | body[p + 1]);
      p += 2 + ((size_t)body[p] << 8 | body[p + 1]);
    }
    for (uint32_t c = 0; c < ncols; c++) {
      if (!(flags & 0x0001)) {
        p += 2 + ((size_t)body[p] << 8 | body[p + 1]);
        p += 2 + ((size_t)body[p] << 8 | body[p + 1]);
      }
      p += 2 + ((size_t)body[p] << 8 | body[p + 1]);
      p += 2; /* option id: only native types in this table */
    }
  }
  int32_t rows = (int32_t)ld32(body + p);
  free(body);
  return rows;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: see the comment at the top of store_load.c\n");
    return 2;
  }
  g_host = argv[1];
  g_port = atoi(argv[2]);
  if (!strcmp(argv[3], "ingest") && argc == 9) {
    int devices = atoi(argv[4]), per = atoi(argv[5]), conns = atoi(argv[6]), batch = atoi(argv[7]);
    int depth = atoi(argv[8]);
    int fd = connect_ready();
    simple(fd, "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', "
               "'replication_factor': 1}");
    simple(fd, "CREATE TABLE IF NOT EXISTS bench.iot (id text, ts timestamp, adresse text, mileage bigint, "
               "fuel_level float, speed float, longitude double, PRIMARY KEY (id, ts))");
    close(fd);
    pthread_t th[256];
    job_t jobs[256];
    if (conns > 256) conns = 256;
    double t0 = now_s();
    for (int c = 0; c < conns; c++) {
      int lo = devices * c / conns, hi = devices * (c + 1) / conns;
      jobs[c] = (job_t){.first_dev = lo, .ndev = hi - lo, .rows_per_dev = per, .batch = batch, .depth = depth};
      pthread_create(&th[c], NULL, ingest_thread, &jobs[c]);
    }
    long rows = 0;
    for (int c = 0; c < conns; c++) {
      pthread_join(th[c], NULL);
      rows += jobs[c].rows;
    }
    double dt = now_s() - t0;
    printf("rows=%ld seconds=%.3f rows_per_s=%.0f\n", rows, dt, (double)rows / dt);
    return 0;
  }
  if (!strcmp(argv[3], "query") && argc == 7) {
    int devices = atoi(argv[4]), per = atoi(argv[5]), n = atoi(argv[6]);
    int fd = connect_ready();
    uint8_t hid[64], pid[64];
    size_t hlen = prepare(fd, "SELECT * FROM bench.iot WHERE id = ? AND ts > ?", hid);
    size_t plen = prepare(fd, "SELECT * FROM bench.iot WHERE id = ? AND ts = ?", pid);
    double *hl = calloc((size_t)n, sizeof *hl), *pl = calloc((size_t)n, sizeof *pl);
    int64_t last = BASE_MS + (int64_t)(per - 1) * 1000;
    for (int i = 0; i < n; i++) {
      char dev[32];
      device_name(dev, (int)((unsigned)i * 7919u % (unsigned)devices));
      double t0 = now_s();
      int32_t rows = execute(fd, hid, hlen, dev, last - 3600 * 1000);
      hl[i] = (now_s() - t0) * 1000;
      if (rows != (per < 3600 ? per : 3600)) {
        fprintf(stderr, "last hour of %s: %d rows\n", dev, rows);
        return 1;
      }
      t0 = now_s();
      rows = execute(fd, pid, plen, dev, BASE_MS + (int64_t)(i % per) * 1000);
      pl[i] = (now_s() - t0) * 1000;
      if (rows != 1) {
        fprintf(stderr, "point read of %s: %d rows\n", dev, rows);
        return 1;
      }
    }
    qsort(hl, (size_t)n, sizeof *hl, cmp_d);
    qsort(pl, (size_t)n, sizeof *pl, cmp_d);
    printf("hour_p50_ms=%.3f hour_p99_ms=%.3f point_p50_ms=%.3f point_p99_ms=%.3f\n", hl[n / 2], hl[n * 99 / 100],
           pl[n / 2], pl[n * 99 / 100]);
    free(hl);
    free(pl);
    close(fd);
    return 0;
  }
  fprintf(stderr, "bad arguments\n");
  return 2;
}
