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

/* Days since 1970-01-01 -> civil date (proleptic Gregorian; H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  unsigned doe = (unsigned)(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static char *put_digits(char *p, unsigned v, int width) { /* zero-padded to exactly width digits */
  for (int i = width - 1; i >= 0; i--) p[i] = (char)('0' + v % 10), v /= 10;
  return p + width;
}

/* 2024-05-01T12:00:00.000Z (24 bytes, no terminator) for 0000-01-01 <= ms < 10000-01-01; 0 otherwise */
static size_t iso8601_fast(int64_t ms, char *out) {
  if (ms < -62167219200000LL || ms >= 253402300800000LL) return 0;
  int64_t days = (ms >= 0 ? ms : ms - 86399999) / 86400000;
  int64_t rem = ms - days * 86400000; /* 0 .. 86399999 */
  int y, mo, d;
  civil_from_days(days, &y, &mo, &d);
  unsigned r = (unsigned)rem;
  char *p = put_digits(out, (unsigned)y, 4);
  *p++ = '-';
  p = put_digits(p, (unsigned)mo, 2);
  *p++ = '-';
  p = put_digits(p, (unsigned)d, 2);
  *p++ = 'T';
  p = put_digits(p, r / 3600000, 2);
  *p++ = ':';
  p = put_digits(p, r / 60000 % 60, 2);
  *p++ = ':';
  p = put_digits(p, r / 1000 % 60, 2);
  *p++ = '.';
  p = put_digits(p, r % 1000, 3);
  *p++ = 'Z';
  return (size_t)(p - out);
}

void sl_sim_format_iso8601(int64_t ms, char *out, size_t outlen) {
  char tmp[32];
  size_t n = iso8601_fast(ms, tmp);
  if (n && outlen > n) {
    memcpy(out, tmp, n);
    out[n] = 0;
    return;
  }
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

/* printf-free formatting for the hot path; every function writes exactly what the printf conversion named in its
 * comment would (tests/unit/test_sim.c compares them on many values). */
#define PUT_LIT(b, s) sl_buf_put((b), (s), sizeof(s) - 1)
static void put_str(sl_buf_t *b, const char *s) { sl_buf_put(b, s, strlen(s)); }

static void put_u64(sl_buf_t *b, uint64_t v, int width) { /* %0<width>llu (width 0: %llu) */
  char tmp[24];
  char *e = tmp + sizeof tmp, *p = e;
  do *--p = (char)('0' + v % 10), v /= 10;
  while (v);
  while (e - p < width) *--p = '0';
  sl_buf_put(b, p, (size_t)(e - p));
}
static void put_i64(sl_buf_t *b, int64_t v) { /* %lld */
  if (v < 0) {
    sl_buf_put_u8(b, '-');
    put_u64(b, (uint64_t)0 - (uint64_t)v, 0);
  } else {
    put_u64(b, (uint64_t)v, 0);
  }
}

static const double pow10_tab[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

/* %.<prec>f, prec 0..9: exactly printf's digits. The scaled value |x| * 10^prec is computed with one rounding
 * (relative error <= 2^-53); when the fraction is provably on one side of one half, rounding to nearest from it
 * gives the same integer as printf's exact decimal expansion. Near-ties, huge values, NaN and infinities go to
 * snprintf. */
void sl_sim_put_fixed(sl_buf_t *b, double x, int prec) {
  double a = fabs(x);
  if (prec >= 0 && prec <= 9 && a < 1e15) {
    double y = a * pow10_tab[prec];
    if (y < 4e15) {
      double n = floor(y), f = y - n; /* exact: y < 2^52 */
      double eps = y * 2.3e-16 + 1e-300; /* > the product's rounding error */
      if (fabs(f - 0.5) > eps) {
        uint64_t r = (uint64_t)n + (f > 0.5);
        uint64_t p10 = (uint64_t)pow10_tab[prec];
        char tmp[48];
        char *e = tmp + sizeof tmp, *p = e;
        uint64_t ip = r / p10, fp = r % p10;
        for (int i = 0; i < prec; i++) *--p = (char)('0' + fp % 10), fp /= 10;
        if (prec) *--p = '.';
        do *--p = (char)('0' + ip % 10), ip /= 10;
        while (ip);
        if (signbit(x)) *--p = '-';
        sl_buf_put(b, p, (size_t)(e - p));
        return;
      }
    }
  }
  char tmp[512];
  int n = snprintf(tmp, sizeof tmp, "%.*f", prec, x);
  if (n > 0) sl_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}
#define put_fixed sl_sim_put_fixed

static void put_iso8601(sl_buf_t *b, int64_t ms) {
  char iso[40];
  size_t n = iso8601_fast(ms, iso);
  if (!n) {
    sl_sim_format_iso8601(ms, iso, sizeof iso);
    n = strlen(iso);
  }
  sl_buf_put(b, iso, n);
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
  /* the address is a function of the block the vehicle is in */
  uint64_t block = (uint64_t)(int64_t)floor(d->lat * 400) * 1000003u + (uint64_t)(int64_t)floor(d->lon * 400);
  uint64_t h = block;
  h = splitmix64(&h);
  int arr = 1 + (int)(h % 20);
  /* {"id":"vehicle-%04u","Adresse":"%u %s, 75%03d Paris","Mileage":%.1f,"Fuel_level":%.2f,"Speed":%.1f,
   *  "Longitude":%.6f,"Latitude":%.6f,"Timestamp":"%s"} */
  sl_buf_reserve(v, 256);
  PUT_LIT(v, "{\"id\":\"vehicle-");
  put_u64(v, idx, 4);
  PUT_LIT(v, "\",\"Adresse\":\"");
  put_u64(v, 1 + (h >> 8) % 150, 0);
  sl_buf_put_u8(v, ' ');
  put_str(v, streets[(h >> 16) % STREET_COUNT]);
  PUT_LIT(v, ", 75");
  put_u64(v, (uint64_t)arr, 3);
  PUT_LIT(v, " Paris\",\"Mileage\":");
  put_fixed(v, d->mileage, 1);
  PUT_LIT(v, ",\"Fuel_level\":");
  put_fixed(v, d->fuel, 2);
  PUT_LIT(v, ",\"Speed\":");
  put_fixed(v, d->speed, 1);
  PUT_LIT(v, ",\"Longitude\":");
  put_fixed(v, d->lon, 6);
  PUT_LIT(v, ",\"Latitude\":");
  put_fixed(v, d->lat, 6);
  PUT_LIT(v, ",\"Timestamp\":\"");
  put_iso8601(v, ts);
  PUT_LIT(v, "\"}");
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
  /* {"timestamp":%lld,"device":{"id":"watch-%04u","model":"%s","firmware":"%s","battery_level":%d},
   *  "health":{"heart_rate":%d,"stress_level":%d,"spo2":%d},"activity":{"type":"%s","steps":%lld,
   *  "distance_m":%.1f,"calories":%.1f},"environment":{"temperature_c":%.1f,"humidity":%.1f,
   *  "location":{"latitude":%.6f,"longitude":%.6f}},"notifications":[ */
  sl_buf_reserve(v, 512);
  PUT_LIT(v, "{\"timestamp\":");
  put_i64(v, ts);
  PUT_LIT(v, ",\"device\":{\"id\":\"watch-");
  put_u64(v, idx, 4);
  PUT_LIT(v, "\",\"model\":\"");
  put_str(v, models[d->model]);
  PUT_LIT(v, "\",\"firmware\":\"");
  put_str(v, firmwares[d->firmware]);
  PUT_LIT(v, "\",\"battery_level\":");
  put_i64(v, (int)d->battery);
  PUT_LIT(v, "},\"health\":{\"heart_rate\":");
  put_i64(v, (int)lround(d->hr));
  PUT_LIT(v, ",\"stress_level\":");
  put_i64(v, (int)d->stress);
  PUT_LIT(v, ",\"spo2\":");
  put_i64(v, 95 + (int)pick(&d->rng, 5));
  PUT_LIT(v, "},\"activity\":{\"type\":\"");
  put_str(v, d->activity == 0 ? "rest" : d->activity == 1 ? "walk" : "run");
  PUT_LIT(v, "\",\"steps\":");
  put_i64(v, (long long)d->steps);
  PUT_LIT(v, ",\"distance_m\":");
  put_fixed(v, d->distance, 1);
  PUT_LIT(v, ",\"calories\":");
  put_fixed(v, d->calories, 1);
  PUT_LIT(v, "},\"environment\":{\"temperature_c\":");
  put_fixed(v, d->temp, 1);
  PUT_LIT(v, ",\"humidity\":");
  put_fixed(v, d->humidity, 1);
  PUT_LIT(v, ",\"location\":{\"latitude\":");
  put_fixed(v, d->lat, 6);
  PUT_LIT(v, ",\"longitude\":");
  put_fixed(v, d->lon, 6);
  PUT_LIT(v, "}},\"notifications\":[");
  if (unif(&d->rng) < 0.1) {
    uint32_t n = pick(&d->rng, 6);
    PUT_LIT(v, "{\"type\":\"");
    put_str(v, notice_kinds[n]);
    PUT_LIT(v, "\",\"message\":\"");
    put_str(v, notices[n]);
    PUT_LIT(v, "\"}");
  }
  const char *err = unif(&d->rng) < 0.01 ? "\"sensor_timeout\"" : "null";
  PUT_LIT(v, "],\"status\":{\"state\":\"");
  put_str(v, d->charging ? "charging" : d->battery < 15 ? "low_battery" : "ok");
  PUT_LIT(v, "\",\"charging\":");
  put_str(v, d->charging ? "true" : "false");
  PUT_LIT(v, ",\"battery_health\":\"");
  put_str(v, d->model == 3 ? "degraded" : "good");
  PUT_LIT(v, "\",\"error\":");
  put_str(v, err);
  PUT_LIT(v, "}}");
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
      PUT_LIT(key, "vehicle-");
      put_u64(key, idx, 4);
      vehicle_json(s, idx, d, ts, value);
      break;
    case SL_SIM_WEARABLES:
      if (k >= s->devices) wearable_step(d, dt_s);
      PUT_LIT(key, "watch-");
      put_u64(key, idx, 4);
      wearable_json(s, idx, d, ts, value);
      break;
    case SL_SIM_USERS:
      PUT_LIT(key, "user-");
      put_u64(key, k, 0);
      user_json(s, d, ts, value);
      break;
  }
  s->seq++;
  return k;
}
