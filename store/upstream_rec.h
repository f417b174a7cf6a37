/* Upstream provider key records: the JSON object stored per key in the `upstreams` column family
 * (api-compat 3.1 fields; the secret only ever as `Sealed`, the hex of its AES-256-GCM blob) and
 * the translation into the arena's upstream settings. */
#ifndef TG_STORE_UPSTREAM_REC_H
#define TG_STORE_UPSTREAM_REC_H

#include <jansson.h>
#include <stdint.h>
#include <time.h>

#include "common/seal.h"
#include "master/config.h"
#include "shm/upstreams.h"

/** The longest secret that fits the arena's sealed slot. */
#define TG_SECRET_MAX (TG_SEALED_MAX - TG_SEAL_OVERHEAD)

/** A new record for key ID owned by OWNER_ID, from SEED, its secret sealed under MASTER_KEY.
 * NULL with *ERR (malloc'd; never contains the secret) when the seed does not fit. */
json_t *tg_uprec_new(uint64_t id, uint64_t owner_id, const tg_key_seed_t *seed, const uint8_t *master_key, time_t now, char **err);
/** Arena settings of record REC. 0, or -1 when a field is missing or does not fit (logged, never the secret). */
int tg_uprec_settings(const json_t *rec, tg_upstream_settings_t *out);

#endif
