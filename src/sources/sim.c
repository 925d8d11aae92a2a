/* Device models for the simulator (see sim.h). Each device owns a small PRNG (splitmix64-seeded xorshift) so a
 * device's readings depend only on the seed and its index, never on how many other devices there are. */
#include "sources/sim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PI 3.14159265358979323846

typedef struct {
  uint64_t rng;
  /* vehicles */
  double lat, lon, heading, speed, fuel, mileage;
  int stopped; /* readings left standing still */
  /* wearables */
  double hr, stress, battery, temp, humidity, steps, distance, calories;
  int activity; /* 0 rest, 1 walk, 2 run */
  int activity_left;
  int charging;
  int model, firmware;
} device_t;

struct sl_sim {
  sl_sim_profile_t profile;
  uint32_t devices;
  uint64_t seed;
  int64_t start_ms;
  double rate;
  uint64_t seq;
  device_t *dev;
};

static const char *const profile_names[] = {"vehicles", "wearables", "users"};
static const char *const profile_topics[] = {"vehicles", "wearables", "users_created"};

int sl_sim_parse_profile(const char *name, sl_sim_profile_t *out) {
  for (int i = 0; i < 3; i++) {
    if (!strcmp(name, profile_names[i])) {
      *out = (sl_sim_profile_t)i;
      return 0;
    }
  }
  return -EINVAL;
}
const char *sl_sim_profile_name(sl_sim_profile_t p) { return profile_names[p]; }
const char *sl_sim_default_topic(sl_sim_profile_t p) { return profile_topics[p]; }

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static uint64_t rnd(uint64_t *s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}
static double unif(uint64_t *s) { return (double)(rnd(s) >> 11) / 9007199254740992.0; } /* [0, 1) */
static uint32_t pick(uint64_t *s, uint32_t n) { return (uint32_t)(unif(s) * n); }
static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

void sl_sim_format_iso8601(int64_t ms, char *out, size_t outlen) {
  time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int msec = (int)(ms - (int64_t)secs * 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, msec);
}

static void putf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(sl_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[1024];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) sl_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* ------------------------------------------------------------------------------------------------ vehicles */
#define PARIS_LAT 48.8566
#define PARIS_LON 2.3522

static const char *const streets[] = {
    "Rue de Rivoli",       "Avenue des Champs-Elysees", "Boulevard Saint-Germain", "Rue de la Paix",
    "Boulevard Haussmann", "Rue du Faubourg Saint-Honore", "Avenue de l'Opera",     "Rue Oberkampf",
    "Quai de la Tournelle", "Boulevard Voltaire",     "Rue de Vaugirard",         "Avenue Montaigne",
    "Rue Mouffetard",      "Boulevard de Sebastopol", "Rue de Belleville",       "Avenue de la Republique"};
enum { STREET_COUNT = sizeof streets / sizeof streets[0] };

static void vehicle_init(device_t *d) {
  d->lat = PARIS_LAT + (unif(&d->rng) - 0.5) * 0.08;
  d->lon = PARIS_LON + (unif(&d->rng) - 0.5) * 0.12;
  d->heading = unif(&d->rng) * 2 * PI;
  d->speed = 20 + unif(&d->rng) * 40;
  d->fuel = 40 + unif(&d->rng) * 60;
  d->mileage = 5000 + unif(&d->rng) * 150000;
}

static void vehicle_step(device_t *d, double dt_s) {
  if (d->stopped > 0) {
    d->stopped--;
    d->speed = 0;
  } else if (unif(&d->rng) < 0.01) {
    d->stopped = 1 + (int)pick(&d->rng, 20); /* traffic light, delivery */
    d->speed = 0;
  } else {
    double target = d->speed < 5 ? 30 : d->speed;
    d->speed = clamp(target + (unif(&d->rng) - 0.5) * 8, 0, 130);
  }
  d->heading += (unif(&d->rng) - 0.5) * 0.3;
  /* stay in town: steer back towards the centre when far out */
  double dlat = PARIS_LAT - d->lat, dlon = PARIS_LON - d->lon;
  if (dlat * dlat + dlon * dlon > 0.08 * 0.08) d->heading = atan2(dlon, dlat);
  double km = d->speed * dt_s / 3600.0;
  d->lat += km / 111.0 * cos(d->heading);
  d->lon += km / (111.0 * cos(d->lat * PI / 180)) * sin(d->heading);
  d->mileage += km;
  d->fuel -= km * 0.12; /* % of tank per km */
  if (d->fuel < 5) d->fuel = 100; /* refilled */
}

static void vehicle_json(const sl_sim_t *s, uint32_t idx, const device_t *d, int64_t ts, sl_buf_t *v) {
  char iso[40];
  sl_sim_format_iso8601(ts, iso, sizeof iso);
  /* the address is a function of the block the vehicle is in */
  uint64_t block = (uint64_t)(int64_t)floor(d->lat * 400) * 1000003u + (uint64_t)(int64_t)floor(d->lon * 400);
  uint64_t h = block;
  h = splitmix64(&h);
  int arr = 1 + (int)(h % 20);
  putf(v,
       "{\"id\":\"vehicle-%04u\",\"Adresse\":\"%u %s, 75%03d Paris\",\"Mileage\":%.1f,\"Fuel_level\":%.2f,"
       "\"Speed\":%.1f,\"Longitude\":%.6f,\"Latitude\":%.6f,\"Timestamp\":\"%s\"}",
       idx, (unsigned)(1 + (h >> 8) % 150), streets[(h >> 16) % STREET_COUNT], arr, d->mileage, d->fuel, d->speed,
       d->lon, d->lat, iso);
  (void)s;
}

/* ----------------------------------------------------------------------------------------------- wearables */
static const char *const models[] = {"Apple Watch Series 9", "Apple Watch Ultra 2", "Apple Watch SE",
                                     "Apple Watch Series 8"};
static const char *const firmwares[] = {"10.1", "10.2", "10.3.1", "9.6"};
static const char *const notices[] = {"Time to stand up", "Breathe", "Close your rings", "New message",
                                      "Calendar: meeting in 10 minutes", "High heart rate detected"};
static const char *const notice_kinds[] = {"reminder", "reminder", "reminder", "message", "alert", "alert"};

static void wearable_init(device_t *d) {
  d->hr = 60 + unif(&d->rng) * 20;
  d->stress = 20 + unif(&d->rng) * 30;
  d->battery = 30 + unif(&d->rng) * 70;
  d->temp = 18 + unif(&d->rng) * 8;
  d->humidity = 35 + unif(&d->rng) * 30;
  d->lat = PARIS_LAT + (unif(&d->rng) - 0.5) * 0.1;
  d->lon = PARIS_LON + (unif(&d->rng) - 0.5) * 0.15;
  d->model = (int)pick(&d->rng, 4);
  d->firmware = (int)pick(&d->rng, 4);
}

static void wearable_step(device_t *d, double dt_s) {
  if (d->activity_left-- <= 0) {
    double r = unif(&d->rng);
    d->activity = r < 0.6 ? 0 : r < 0.9 ? 1 : 2;
    d->activity_left = 20 + (int)pick(&d->rng, 200);
  }
  static const double hr_target[] = {65, 95, 150}, cadence[] = {0, 1.7, 2.7}; /* steps/s */
  d->hr = clamp(d->hr + (hr_target[d->activity] - d->hr) * 0.1 + (unif(&d->rng) - 0.5) * 4, 40, 200);
  d->stress = clamp(d->stress + (unif(&d->rng) - 0.5) * 3, 0, 100);
  double steps = cadence[d->activity] * dt_s * (0.8 + unif(&d->rng) * 0.4);
  d->steps += steps;
  d->distance += steps * (d->activity == 2 ? 1.1 : 0.75);
  d->calories += dt_s * (d->activity == 0 ? 0.018 : d->activity == 1 ? 0.07 : 0.18);
  d->temp = clamp(d->temp + (unif(&d->rng) - 0.5) * 0.1, -10, 45);
  d->humidity = clamp(d->humidity + (unif(&d->rng) - 0.5) * 0.5, 5, 100);
  if (d->activity) {
    d->lat += (unif(&d->rng) - 0.5) * 0.00005 * dt_s;
    d->lon += (unif(&d->rng) - 0.5) * 0.00005 * dt_s;
  }
  if (d->charging) {
    d->battery += dt_s * 0.05;
    if (d->battery >= 100) d->battery = 100, d->charging = 0;
  } else {
    d->battery -= dt_s * (0.002 + 0.004 * d->activity);
    if (d->battery < 5) d->charging = 1;
  }
}

static void wearable_json(const sl_sim_t *s, uint32_t idx, device_t *d, int64_t ts, sl_buf_t *v) {
  putf(v,
       "{\"timestamp\":%lld,\"device\":{\"id\":\"watch-%04u\",\"model\":\"%s\",\"firmware\":\"%s\","
       "\"battery_level\":%d},\"health\":{\"heart_rate\":%d,\"stress_level\":%d,\"spo2\":%d},"
       "\"activity\":{\"type\":\"%s\",\"steps\":%lld,\"distance_m\":%.1f,\"calories\":%.1f},"
       "\"environment\":{\"temperature_c\":%.1f,\"humidity\":%.1f,\"location\":{\"latitude\":%.6f,"
       "\"longitude\":%.6f}},\"notifications\":[",
       (long long)ts, idx, models[d->model], firmwares[d->firmware], (int)d->battery, (int)lround(d->hr),
       (int)d->stress, 95 + (int)pick(&d->rng, 5), d->activity == 0 ? "rest" : d->activity == 1 ? "walk" : "run",
       (long long)d->steps, d->distance, d->calories, d->temp, d->humidity, d->lat, d->lon);
  if (unif(&d->rng) < 0.1) {
    uint32_t n = pick(&d->rng, 6);
    putf(v, "{\"type\":\"%s\",\"message\":\"%s\"}", notice_kinds[n], notices[n]);
  }
  const char *err = unif(&d->rng) < 0.01 ? "\"sensor_timeout\"" : "null";
  putf(v, "],\"status\":{\"state\":\"%s\",\"charging\":%s,\"battery_health\":\"%s\",\"error\":%s}}",
       d->charging ? "charging" : d->battery < 15 ? "low_battery" : "ok", d->charging ? "true" : "false",
       d->model == 3 ? "degraded" : "good", err);
  (void)s;
}

/* ------------------------------------------------------------------------------------------------- users */
static const char *const first_f[] = {"Emma", "Louise", "Alice", "Chloe", "Lea", "Manon", "Camille", "Ines",
                                      "Sarah", "Julia"};
static const char *const first_m[] = {"Lucas", "Hugo", "Louis", "Gabriel", "Arthur", "Jules", "Adam", "Nathan",
                                      "Leo", "Raphael"};
static const char *const lasts[] = {"Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit",
                                    "Durand", "Leroy", "Moreau", "Simon", "Laurent"};
static const char *const cities[][3] = {{"Lyon", "Rhone", "69"},         {"Marseille", "Bouches-du-Rhone", "13"},
                                        {"Toulouse", "Haute-Garonne", "31"}, {"Nantes", "Loire-Atlantique", "44"},
                                        {"Lille", "Nord", "59"},          {"Bordeaux", "Gironde", "33"}};
static const char *const words[] = {"blue", "silver", "happy", "tiny", "crazy", "lazy", "brown", "red"};
static const char *const animals[] = {"cat", "tiger", "bird", "fish", "wolf", "rabbit", "goose", "bear"};

static void user_json(sl_sim_t *s, device_t *d, int64_t ts, sl_buf_t *v) {
  uint64_t *r = &d->rng;
  int female = unif(r) < 0.5;
  const char *first = female ? first_f[pick(r, 10)] : first_m[pick(r, 10)];
  const char *last = lasts[pick(r, 12)];
  const char *const *city = cities[pick(r, 6)];
  uint8_t u[16];
  for (int i = 0; i < 16; i++) u[i] = (uint8_t)rnd(r);
  u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
  u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
  char dob[40], reg[40];
  int64_t dob_ms = ts - (int64_t)(18 + pick(r, 60)) * 31557600000LL - (int64_t)pick(r, 365) * 86400000LL;
  int64_t reg_ms = ts - (int64_t)(1 + pick(r, 20)) * 31557600000LL - (int64_t)pick(r, 365) * 86400000LL;
  sl_sim_format_iso8601(dob_ms, dob, sizeof dob);
  sl_sim_format_iso8601(reg_ms, reg, sizeof reg);
  unsigned pic = pick(r, 100);
  unsigned postcode = (unsigned)atoi(city[2]) * 1000 + pick(r, 10) * 10;
  /* like the real API, the postcode is a number for most nationalities and sometimes a string */
  char pc[24];
  if (unif(r) < 0.2)
    snprintf(pc, sizeof pc, "\"%05u\"", postcode);
  else
    snprintf(pc, sizeof pc, "%u", postcode);
  putf(v,
       "{\"results\":[{\"gender\":\"%s\",\"name\":{\"title\":\"%s\",\"first\":\"%s\",\"last\":\"%s\"},"
       "\"location\":{\"street\":{\"number\":%u,\"name\":\"%s\"},\"city\":\"%s\",\"state\":\"%s\","
       "\"country\":\"France\",\"postcode\":%s,\"coordinates\":{\"latitude\":\"%.4f\",\"longitude\":\"%.4f\"},"
       "\"timezone\":{\"offset\":\"+1:00\",\"description\":\"Brussels, Copenhagen, Madrid, Paris\"}},",
       female ? "female" : "male", female ? (unif(r) < 0.5 ? "Mme" : "Mlle") : "M", first, last,
       1 + pick(r, 9999), streets[pick(r, STREET_COUNT)], city[0], city[1], pc, (unif(r) - 0.5) * 180,
       (unif(r) - 0.5) * 360);
  char lower_first[32], lower_last[32];
  snprintf(lower_first, sizeof lower_first, "%s", first);
  snprintf(lower_last, sizeof lower_last, "%s", last);
  for (char *p = lower_first; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  for (char *p = lower_last; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
  putf(v,
       "\"email\":\"%s.%s@example.com\",\"login\":{\"uuid\":\"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
       "%02x%02x%02x%02x%02x%02x\",\"username\":\"%s%s%u\",\"password\":\"%s%u\"},",
       lower_first, lower_last, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
       u[13], u[14], u[15], words[pick(r, 8)], animals[pick(r, 8)], pick(r, 1000), words[pick(r, 8)],
       pick(r, 100));
  putf(v,
       "\"dob\":{\"date\":\"%s\",\"age\":%d},\"registered\":{\"date\":\"%s\",\"age\":%d},"
       "\"phone\":\"0%u-%02u-%02u-%02u-%02u\",\"cell\":\"06-%02u-%02u-%02u-%02u\",\"id\":{\"name\":\"INSEE\","
       "\"value\":\"%u\"},\"picture\":{\"large\":\"https://randomuser.me/api/portraits/%s/%u.jpg\","
       "\"medium\":\"https://randomuser.me/api/portraits/med/%s/%u.jpg\","
       "\"thumbnail\":\"https://randomuser.me/api/portraits/thumb/%s/%u.jpg\"},\"nat\":\"FR\"}],"
       "\"info\":{\"seed\":\"%016llx\",\"results\":1,\"page\":%llu,\"version\":\"1.4\"}}",
       dob, (int)((ts - dob_ms) / 31557600000LL), reg, (int)((ts - reg_ms) / 31557600000LL), 1 + pick(r, 5),
       pick(r, 100), pick(r, 100), pick(r, 100), pick(r, 100), pick(r, 100), pick(r, 100), pick(r, 100),
       pick(r, 100), (unsigned)pick(r, 1000000000), female ? "women" : "men", pic, female ? "women" : "men", pic,
       female ? "women" : "men", pic, (unsigned long long)s->seed, (unsigned long long)s->seq + 1);
}

/* ----------------------------------------------------------------------------------------------- common */
int sl_sim_create(sl_sim_profile_t p, uint32_t devices, uint64_t seed, int64_t start_ms, double rate,
                  sl_sim_t **out) {
  if (devices == 0 || !(rate > 0)) return -EINVAL;
  sl_sim_t *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->dev = calloc(devices, sizeof *s->dev);
  if (!s->dev) {
    free(s);
    return -ENOMEM;
  }
  s->profile = p;
  s->devices = devices;
  s->seed = seed;
  s->start_ms = start_ms;
  s->rate = rate;
  for (uint32_t i = 0; i < devices; i++) {
    device_t *d = &s->dev[i];
    uint64_t x = seed * 0x100000001B3ULL + (uint64_t)p * 0x9E37ULL + i;
    d->rng = splitmix64(&x) | 1; /* xorshift state must not be zero */
    if (p == SL_SIM_VEHICLES) vehicle_init(d);
    if (p == SL_SIM_WEARABLES) wearable_init(d);
  }
  *out = s;
  return 0;
}

void sl_sim_destroy(sl_sim_t *s) {
  if (!s) return;
  free(s->dev);
  free(s);
}

uint64_t sl_sim_next(sl_sim_t *s, sl_buf_t *key, sl_buf_t *value) {
  uint64_t k = s->seq;
  uint32_t idx = (uint32_t)(k % s->devices);
  device_t *d = &s->dev[idx];
  int64_t ts = s->start_ms + (int64_t)((double)k * 1000.0 / s->rate);
  double dt_s = (double)s->devices / s->rate; /* time between two readings of one device */
  key->len = value->len = 0;
  switch (s->profile) {
    case SL_SIM_VEHICLES:
      if (k >= s->devices) vehicle_step(d, dt_s);
      putf(key, "vehicle-%04u", idx);
      vehicle_json(s, idx, d, ts, value);
      break;
    case SL_SIM_WEARABLES:
      if (k >= s->devices) wearable_step(d, dt_s);
      putf(key, "watch-%04u", idx);
      wearable_json(s, idx, d, ts, value);
      break;
    case SL_SIM_USERS:
      putf(key, "user-%llu", (unsigned long long)k);
      user_json(s, d, ts, value);
      break;
  }
  s->seq++;
  return k;
}
