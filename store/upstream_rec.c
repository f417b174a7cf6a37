/* Upstream key records (upstream_rec.h): sealing a seeded secret, mapping to arena settings. */
#include "store/upstream_rec.h"

#include <stdio.h>
#include <string.h>

#include "common/keyhash.h"
#include "common/log.h"
#include "common/seal.h"
#include "store/record.h"
#include "store/schema.h"
#include "store/store-i.h"

json_t *tg_uprec_new(uint64_t id, uint64_t owner_id, const tg_key_seed_t *seed, const uint8_t *master_key, time_t now, char **err)
{
    const char *secret = seed->secret ? seed->secret : "";
    size_t len = strlen(secret);
    if (len == 0 || len > TG_SECRET_MAX) {
        tg_store_fail(err, "upstream key %llu%s%s: the secret must be 1..%d bytes", (unsigned long long)id, seed->name ? " " : "",
                      seed->name ? seed->name : "", TG_SECRET_MAX);
        return NULL;
    }
    if (seed->provider == NULL || strlen(seed->provider) >= TG_URL_MAX) {
        tg_store_fail(err, "upstream key %llu: provider URL missing or longer than %d bytes", (unsigned long long)id,
                      TG_URL_MAX - 1);
        return NULL;
    }
    uint8_t sealed[TG_SEALED_MAX];
    char hex[2 * TG_SEALED_MAX + 1], ts[21];
    int n = tg_seal(master_key, secret, len, sealed, sizeof(sealed));
    if (n < 0) {
        tg_store_fail(err, "upstream key %llu: sealing the secret failed", (unsigned long long)id);
        return NULL;
    }
    tg_hex(sealed, (size_t)n, hex);
    tg_rfc3339(now, ts);
    json_t *rec =
        json_pack("{s:I, s:s, s:i, s:s, s:s, s:b, s:I, s:s, s:s}", "ID", (json_int_t)id, "Name", seed->name ? seed->name : "",
                  "Level", seed->level, "Provider", seed->provider, "Protocol", tg_protocol_name(seed->protocol), "Status", 1,
                  "OwnerID", (json_int_t)owner_id, "Sealed", hex, "CreatedAt", ts);
    if (rec == NULL)
        tg_store_fail(err, "upstream key %llu: out of memory", (unsigned long long)id);
    return rec;
}

int tg_uprec_settings(const json_t *rec, tg_upstream_settings_t *out)
{
    memset(out, 0, sizeof(*out));
    out->id = tg_rec_u64(rec, "ID", 0);
    out->owner_id = tg_rec_u64(rec, "OwnerID", 0);
    out->level = (int32_t)tg_rec_i64(rec, "Level", 1);
    tg_protocol_t proto;
    if (tg_protocol_parse(tg_rec_str(rec, "Protocol", "openai"), &proto) != 0) {
        tg_warn("store: upstream key %llu has an unknown protocol", (unsigned long long)out->id);
        return -1;
    }
    out->protocol = (int32_t)proto;
    const char *url = tg_rec_str(rec, "Provider", ""), *sealed = tg_rec_str(rec, "Sealed", "");
    int n = tg_unhex(sealed, strlen(sealed), out->sealed, sizeof(out->sealed));
    if (out->id == 0 || strlen(url) >= TG_URL_MAX || n <= 0) {
        tg_warn("store: upstream key %llu is malformed (id, provider or sealed secret)", (unsigned long long)out->id);
        return -1;
    }
    out->sealed_len = (uint32_t)n;
    snprintf(out->url, sizeof(out->url), "%s", url);
    snprintf(out->name, sizeof(out->name), "%s", tg_rec_str(rec, "Name", ""));
    if (tg_rec_bool(rec, "Status", 1))
        out->flags |= TG_UPSTREAM_ENABLED;
    return 0;
}
