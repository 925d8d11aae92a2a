/* Device models for the simulator: deterministic generators of the readings the seeds' devices send.
 *
 * Profiles (the user's documents, /work/shared/seeds):
 *   vehicles  - seed 000's IoT_instance: id, Adresse, Mileage, Fuel_level, Speed, Longitude (+ Latitude), Timestamp
 *               (ISO-8601). Each vehicle drives a wandering route around Paris: speed random-walks with stops,
 *               position follows speed and heading, fuel falls with distance and is refilled, mileage rises.
 *   wearables - seed 004's Apple-Watch categories as nested objects: device metadata, health metrics, activity,
 *               environment, notifications, device status logs; timestamp in epoch milliseconds. Heart rate drifts
 *               towards the current activity's level, steps/distance/calories accumulate, battery drains and
 *               charges.
 *   users     - seeds 002/003: the Random User API's response ({"results": [user], "info": {...}}), one user per
 *               record (what the seeds' Airflow task publishes to `users_created`).
 *
 * Reading k (0-based, over all devices of a generator) belongs to device k % devices and is stamped
 * start_ms + k * 1000 / rate: the time a real fleet emitting `rate` readings/s would have sent it. Everything is a
 * pure function of (profile, devices, seed, start_ms, rate): the same arguments produce the same bytes. */
#ifndef SL_SOURCES_SIM_H
#define SL_SOURCES_SIM_H
#include <stdint.h>

#include "core/buf.h"

typedef enum { SL_SIM_VEHICLES = 0, SL_SIM_WEARABLES = 1, SL_SIM_USERS = 2 } sl_sim_profile_t;

typedef struct sl_sim sl_sim_t;

/* Returns 0 or -EINVAL for an unknown name ("vehicles", "wearables", "users"). */
int sl_sim_parse_profile(const char *name, sl_sim_profile_t *out);
const char *sl_sim_profile_name(sl_sim_profile_t p);
/* The topic the seeds use for the profile: vehicles, wearables, users_created. */
const char *sl_sim_default_topic(sl_sim_profile_t p);

/* devices >= 1; rate > 0 readings/s (it only spaces the timestamps). Returns 0 or -ENOMEM. */
int sl_sim_create(sl_sim_profile_t p, uint32_t devices, uint64_t seed, int64_t start_ms, double rate,
                  sl_sim_t **out);
void sl_sim_destroy(sl_sim_t *s);
/* Generates the next reading: appends its key (the device id) to key and its JSON document to value (both are
 * cleared first) and returns its sequence number. */
uint64_t sl_sim_next(sl_sim_t *s, sl_buf_t *key, sl_buf_t *value);

/* Formats ms since the epoch as ISO-8601 UTC with milliseconds ("2024-05-01T12:00:00.000Z"); out >= 25 bytes. */
void sl_sim_format_iso8601(int64_t ms, char *out, size_t outlen);
/* Appends x as printf("%.<prec>f") would, without printf on the common path (prec 0..9). */
void sl_sim_put_fixed(sl_buf_t *b, double x, int prec);

#endif
