/* Simulator models: determinism, shapes, plausible evolution. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "sources/sim.h"
#include "sources/simulate.h"

static json_t *next_json(sl_sim_t *s, sl_buf_t *k, sl_buf_t *v) {
  sl_sim_next(s, k, v);
  json_error_t e;
  json_t *j = json_loadb((const char *)v->data, v->len, 0, &e);
  if (!j) fprintf(stderr, "bad JSON: %.*s\n%s\n", (int)v->len, (const char *)v->data, e.text);
  assert_non_null(j);
  return j;
}

static void test_deterministic(void **state) {
  for (int p = 0; p < 3; p++) {
    sl_sim_t *a, *b, *c;
    assert_int_equal(sl_sim_create((sl_sim_profile_t)p, 7, 42, 1714560000000, 100, &a), 0);
    assert_int_equal(sl_sim_create((sl_sim_profile_t)p, 7, 42, 1714560000000, 100, &b), 0);
    assert_int_equal(sl_sim_create((sl_sim_profile_t)p, 7, 43, 1714560000000, 100, &c), 0);
    sl_buf_t ka, va, kb, vb, kc, vc;
    sl_buf_init(&ka), sl_buf_init(&va), sl_buf_init(&kb), sl_buf_init(&vb), sl_buf_init(&kc), sl_buf_init(&vc);
    int differ = 0;
    for (int i = 0; i < 500; i++) {
      sl_sim_next(a, &ka, &va);
      sl_sim_next(b, &kb, &vb);
      sl_sim_next(c, &kc, &vc);
      assert_int_equal(va.len, vb.len);
      assert_memory_equal(va.data, vb.data, va.len);
      assert_memory_equal(ka.data, kb.data, ka.len);
      differ += va.len != vc.len || memcmp(va.data, vc.data, va.len) != 0;
    }
    assert_true(differ > 400); /* another seed, other readings */
    sl_buf_free(&ka), sl_buf_free(&va), sl_buf_free(&kb), sl_buf_free(&vb), sl_buf_free(&kc), sl_buf_free(&vc);
    sl_sim_destroy(a), sl_sim_destroy(b), sl_sim_destroy(c);
  }
}

static void test_vehicles(void **state) {
  sl_sim_t *s;
  assert_int_equal(sl_sim_create(SL_SIM_VEHICLES, 3, 1, 1714560000000, 3, &s), 0); /* 1 reading/s/vehicle */
  sl_buf_t k, v;
  sl_buf_init(&k), sl_buf_init(&v);
  double last_mileage[3] = {0}, last_lat[3] = {0};
  int fuel_down = 0, moved = 0;
  double last_fuel[3] = {0};
  for (int i = 0; i < 3000; i++) {
    json_t *j = next_json(s, &k, &v);
    int d = i % 3;
    char id[32];
    snprintf(id, sizeof id, "vehicle-%04d", d);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_int_equal(k.len, strlen(id));
    for (const char *f = "Adresse\0Mileage\0Fuel_level\0Speed\0Longitude\0Latitude\0Timestamp\0"; *f; f += strlen(f) + 1)
      assert_non_null(json_object_get(j, f));
    double speed = json_number_value(json_object_get(j, "Speed"));
    double fuel = json_number_value(json_object_get(j, "Fuel_level"));
    double mileage = json_number_value(json_object_get(j, "Mileage"));
    double lat = json_number_value(json_object_get(j, "Latitude"));
    assert_true(speed >= 0 && speed <= 130);
    assert_true(fuel > 0 && fuel <= 100);
    assert_true(lat > 48.6 && lat < 49.1);
    if (i >= 3) {
      assert_true(mileage >= last_mileage[d]); /* never decreases */
      fuel_down += fuel < last_fuel[d];
      moved += lat != last_lat[d];
    }
    last_mileage[d] = mileage, last_fuel[d] = fuel, last_lat[d] = lat;
    if (i == 0) assert_string_equal(json_string_value(json_object_get(j, "Timestamp")), "2024-05-01T10:40:00.000Z");
    if (i == 3) assert_string_equal(json_string_value(json_object_get(j, "Timestamp")), "2024-05-01T10:40:01.000Z");
    json_decref(j);
  }
  assert_true(fuel_down > 50); /* 0.01 % resolution: falls every few readings */
  assert_true(moved > 1000);
  sl_buf_free(&k), sl_buf_free(&v);
  sl_sim_destroy(s);
}

static void test_wearables(void **state) {
  sl_sim_t *s;
  assert_int_equal(sl_sim_create(SL_SIM_WEARABLES, 2, 9, 1714560000000, 2, &s), 0);
  sl_buf_t k, v;
  sl_buf_init(&k), sl_buf_init(&v);
  double last_steps = -1;
  for (int i = 0; i < 2000; i++) {
    json_t *j = next_json(s, &k, &v);
    for (const char *f = "device\0health\0activity\0environment\0notifications\0status\0"; *f; f += strlen(f) + 1)
      assert_non_null(json_object_get(j, f));
    assert_true(json_is_integer(json_object_get(j, "timestamp")));
    int hr = (int)json_integer_value(json_object_get(json_object_get(j, "health"), "heart_rate"));
    assert_true(hr >= 40 && hr <= 200);
    json_t *bat = json_object_get(json_object_get(j, "device"), "battery_level");
    assert_true(json_integer_value(bat) >= 0 && json_integer_value(bat) <= 100);
    if (i % 2 == 0) {
      double steps = (double)json_integer_value(json_object_get(json_object_get(j, "activity"), "steps"));
      assert_true(steps >= last_steps);
      last_steps = steps;
    }
    json_decref(j);
  }
  sl_buf_free(&k), sl_buf_free(&v);
  sl_sim_destroy(s);
}

static void test_users(void **state) {
  sl_sim_t *s;
  assert_int_equal(sl_sim_create(SL_SIM_USERS, 1, 5, 1714560000000, 10, &s), 0);
  sl_buf_t k, v;
  sl_buf_init(&k), sl_buf_init(&v);
  for (int i = 0; i < 200; i++) {
    json_t *j = next_json(s, &k, &v);
    json_t *u = json_array_get(json_object_get(j, "results"), 0);
    assert_non_null(u);
    assert_non_null(json_string_value(json_object_get(json_object_get(u, "name"), "first")));
    assert_non_null(json_object_get(json_object_get(json_object_get(u, "location"), "street"), "number"));
    assert_int_equal(strlen(json_string_value(json_object_get(json_object_get(u, "login"), "uuid"))), 36);
    assert_non_null(json_string_value(json_object_get(json_object_get(u, "picture"), "medium")));
    assert_non_null(json_object_get(json_object_get(j, "info"), "seed"));
    json_decref(j);
  }
  sl_buf_free(&k), sl_buf_free(&v);
  sl_sim_destroy(s);
}

static void test_parse_rate_time(void **state) {
  double r;
  assert_int_equal(sl_simulate_parse_rate("1000", &r), 0), assert_true(r == 1000);
  assert_int_equal(sl_simulate_parse_rate("20k/s", &r), 0), assert_true(r == 20000);
  assert_int_equal(sl_simulate_parse_rate("max", &r), 0), assert_true(r == 0);
  assert_int_equal(sl_simulate_parse_rate("fast", &r), -22);
  int64_t ms;
  assert_int_equal(sl_simulate_parse_time("2024-05-01T10:40:00Z", &ms), 0);
  assert_true(ms == 1714560000000);
  assert_int_equal(sl_simulate_parse_time("1714560000000", &ms), 0);
  assert_true(ms == 1714560000000);
  sl_sim_profile_t p;
  assert_int_equal(sl_sim_parse_profile("wearables", &p), 0);
  assert_int_equal(p, SL_SIM_WEARABLES);
  assert_int_not_equal(sl_sim_parse_profile("boats", &p), 0);
}

/* the printf-free formatters write exactly what printf would: random values at every scale, near-ties, signs */
static void test_fixed_format(void **state) {
  (void)state;
  sl_buf_t b;
  sl_buf_init(&b);
  char want[600];
  uint64_t x = 88172645463325252ULL;
  static const double special[] = {0.0,    -0.0,   0.05,  0.15,   0.25,     2.5,      -0.04,    0.125,   1e15,
                                   1e16,   -1e300, 1e-300, 9.995, 99.995,   2.675,    1.005,    0.5,     48.8566,
                                   0.0625, 0.045,  1e14 + 0.5};
  for (int i = 0; i < 400000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double v;
    if (i < (int)(sizeof special / sizeof special[0])) {
      v = special[i];
    } else if (i % 4 == 0) { /* exact decimal-looking values: ties and near-ties at every precision */
      v = (double)(int64_t)(x % 20000001) / 1000.0 - 10000.0;
      v += (i % 8 == 0) ? 0.0005 : 0.00005;
    } else {
      int e = (int)(x % 40) - 20;
      v = ((double)(x >> 11) / 9007199254740992.0 - 0.3) * pow(10.0, e);
    }
    for (int prec = 0; prec <= 9; prec++) {
      b.len = 0;
      sl_sim_put_fixed(&b, v, prec);
      int n = snprintf(want, sizeof want, "%.*f", prec, v);
      if ((size_t)n != b.len || memcmp(want, b.data, b.len) != 0)
        fail_msg("%.17g prec %d: want %s got %.*s", v, prec, want, (int)b.len, (const char *)b.data);
    }
  }
  char iso[40], ref[96];
  for (int64_t ms = -62167219200000LL - 86400000LL * 3; ms < 253402300800000LL + 86400000LL * 400;
       ms += 86400000LL * 7 + 3600123) {
    sl_sim_format_iso8601(ms, iso, sizeof iso);
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(ref, sizeof ref, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms - (int64_t)secs * 1000));
    if (strcmp(iso, ref) != 0) fail_msg("%lld: want %s got %s", (long long)ms, ref, iso);
  }
  sl_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deterministic), cmocka_unit_test(test_vehicles), cmocka_unit_test(test_wearables),
      cmocka_unit_test(test_users),         cmocka_unit_test(test_parse_rate_time),
      cmocka_unit_test(test_fixed_format),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
