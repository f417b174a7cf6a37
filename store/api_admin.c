/* The Admin API (api-compat 4.3, 7.12) and the descendants' bill (4.1 /x-bill).
 *
 *   GET|POST /x-keys, PUT|POST|DELETE /x-keys/{id}   the owner's provider keys; secrets sealed, never returned
 *   GET|POST /x-conf                                 batch owner config (POST cascades to descendants)
 *   GET|PUT|POST|DELETE /x-config                    owner config keys (DELETE restores the default)
 *   GET /x-info?user=                                (api_dashboard.c)
 *   POST|DELETE /x-news[/{target}]                   news: root system-wide, owners their subtree
 *   GET /x-gkey                                      a fresh sk-Xvs key
 *   GET /x-logs?u=                                   the descendants' request log
 *   GET /x-bill                                      aggregated usage of descendants (manage right)
 * Only root and owners (root's direct children) pass the admin gate; an owner sees only its own
 * pool and config (OwnerID); root acts on its own pool (owner 1). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/keyhash.h"
#include "common/log.h"
#include "common/seal.h"
#include "shm/upstreams.h"
#include "store/account_rec.h"
#include "store/acct_fields.h"
#include "store/admin_fields.h"
#include "store/api.h"
#include "store/api_manage-i.h"
#include "store/record.h"
#include "store/store-i.h"
#include "store/txn.h"
#include "store/upstream_rec.h"
#include "store/usage_q.h"

/* ---- /x-keys ---- */

static uint64_t owner_of_caller(tg_api_req_t *r)
{
    return r->caller_id == TG_ROOT_ID ? TG_ROOT_ID : r->caller_id;
}

static json_t *key_view(const json_t *k)
{
    json_t *cfg = json_object_get(k, "Config");
    json_t *out = json_pack("{s:I, s:s, s:I, s:s, s:s, s:b, s:I, s:s, s:s}", "ID", (json_int_t)tg_rec_u64(k, "ID", 0), "Name",
                            tg_rec_str(k, "Name", ""), "Level", (json_int_t)tg_rec_i64(k, "Level", 1), "Provider",
                            tg_rec_str(k, "Provider", ""), "SecretKey", "***", "Status", tg_rec_bool(k, "Status", 1), "OwnerID",
                            (json_int_t)tg_rec_u64(k, "OwnerID", 0), "CreatedAt", tg_rec_str(k, "CreatedAt", ""), "UpdatedAt",
                            tg_rec_str(k, "UpdatedAt", tg_rec_str(k, "CreatedAt", "")));
    json_t *c = json_is_object(cfg) ? json_deep_copy(cfg) : json_object();
    json_object_set_new(c, "protocol", json_string(tg_rec_str(k, "Protocol", "openai")));
    json_object_set_new(out, "config", c);
    return out;
}

typedef struct keys_q {
    uint64_t owner, id;
    int level;
    const char *provider;
    json_t *out;
} keys_q_t;

static int keys_one(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    keys_q_t *q = ud;
    json_t *rec = json_loadb(v, vl, 0, NULL);
    if (rec == NULL)
        return 0;
    int keep = tg_rec_u64(rec, "OwnerID", 0) == q->owner;
    if (keep && q->id && tg_rec_u64(rec, "ID", 0) != q->id)
        keep = 0;
    if (keep && q->level && tg_rec_i64(rec, "Level", 1) != q->level)
        keep = 0;
    if (keep && q->provider && !strstr(tg_rec_str(rec, "Provider", ""), q->provider))
        keep = 0;
    if (keep)
        json_array_append_new(q->out, key_view(rec));
    json_decref(rec);
    return 0;
}

void tg_api_keys_get(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    keys_q_t q = {owner_of_caller(r), 0, 0, NULL, json_array()};
    char v[256], ident[256], pagebuf[16], sizebuf[16];
    if (r->rest.len > 1) {
        snprintf(ident, sizeof(ident), "%.*s", (int)(r->rest.len - 1), r->rest.base + 1);
        if (ident[0] == 'L' && isdigit((unsigned char)ident[1]))
            q.level = atoi(ident + 1);
        else if (isdigit((unsigned char)ident[0]))
            q.id = strtoull(ident, NULL, 10);
        else
            q.provider = ident;
    }
    if (tg_api_query(r, "id", v, sizeof(v)) == 1 && *v)
        q.id = strtoull(v, NULL, 10);
    if (tg_api_query(r, "level", v, sizeof(v)) == 1 && *v)
        q.level = atoi(v);
    static char prov[256];
    if (tg_api_query(r, "provider", prov, sizeof(prov)) == 1 && *prov)
        q.provider = prov;
    tg_store_each(r->store, TG_CF_UPSTREAMS, keys_one, &q);
    long page = 1, size = 0;
    int has_page = tg_api_query(r, "page", pagebuf, sizeof(pagebuf)) == 1, has_size = tg_api_query(r, "size", sizebuf, sizeof(sizebuf)) == 1;
    if ((has_page && (page = strtol(pagebuf, NULL, 10)) < 1) || (has_size && ((size = strtol(sizebuf, NULL, 10)) < 1 || size > 1000))) {
        json_decref(q.out);
        tg_api_error(r, 400, "invalid_parameter", "%s", has_size && (size < 1 || size > 1000) ? "size: must be from 1 to 1000"
                                                                                             : "page: must be a positive integer");
        return;
    }
    size_t total = json_array_size(q.out);
    if (size == 0)
        size = total ? (long)total : 1;
    json_t *pg = json_array();
    for (size_t i = (size_t)(page - 1) * (size_t)size; i < total && json_array_size(pg) < (size_t)size; i++)
        json_array_append(pg, json_array_get(q.out, i));
    json_decref(q.out);
    char buf[32];
    snprintf(buf, sizeof(buf), "%zu", total);
    tg_api_header(r, "X-Total-Count", buf);
    snprintf(buf, sizeof(buf), "%ld", page);
    tg_api_header(r, "X-Page", buf);
    snprintf(buf, sizeof(buf), "%ld", size);
    tg_api_header(r, "X-Per-Page", buf);
    snprintf(buf, sizeof(buf), "%zu", (total + (size_t)size - 1) / (size_t)size);
    tg_api_header(r, "X-Total-Pages", buf);
    tg_api_send(r, 200, pg);
}

static void publish_upstream(tg_api_req_t *r, const json_t *rec)
{
    tg_store_t *s = r->store;
    if (r->arena == NULL || !s->slots_ready)
        return;
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    int64_t slot = tg_slotmap_assign(&s->up_slots, id);
    tg_upstream_settings_t st;
    if (slot < 0 || tg_uprec_settings(rec, &st) != 0 || tg_upstream_publish(r->arena, (uint32_t)slot, &st) != 0)
        tg_error("x-keys: upstream key %llu could not be published (arena full or record bad)", (unsigned long long)id);
    explicit_bzero(st.sealed, sizeof(st.sealed));
    atomic_fetch_add(&r->arena->hdr->settings_gen, 1);
}

/* Applies a key body (create or update) to REC. Answers 400 and returns -1 on a bad field. */
static int apply_key_fields(tg_api_req_t *r, json_t *body, json_t *rec, int create, json_t *audit)
{
    static const char *const known[] = {"Name", "Level", "Provider", "SecretKey", "Status", "config", "Config", NULL};
    const char *k;
    json_t *v;
    char why[160];
    json_object_foreach(body, k, v)
    {
        int ok = 0;
        for (const char *const *n = known; *n; n++)
            ok |= strcmp(*n, k) == 0;
        if (!ok) {
            tg_api_error(r, 400, "unknown_field", "%s: unknown field", k);
            return -1;
        }
    }
    if (create)
        for (const char *const *req = (const char *const[]){"Level", "Provider", "SecretKey", NULL}; *req; req++)
            if (!json_object_get(body, *req)) {
                tg_api_error(r, 400, "missing_field", "%s: required", *req);
                return -1;
            }
    if ((v = json_object_get(body, "Name"))) {
        if (!json_is_string(v) || strlen(json_string_value(v)) > 63) {
            tg_api_error(r, 400, "invalid_value", "Name: must be a string of at most 63 characters");
            return -1;
        }
        json_object_set(rec, "Name", v);
        json_object_set(audit, "Name", v);
    }
    if ((v = json_object_get(body, "Level"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 64) {
            tg_api_error(r, 400, "invalid_value", "Level: must be an integer from 1 to 64 (a JSON number)");
            return -1;
        }
        json_object_set(rec, "Level", v);
        json_object_set(audit, "Level", v);
    }
    if ((v = json_object_get(body, "Provider"))) {
        if (!json_is_string(v) || tg_provider_url_valid(json_string_value(v), r->store->allow_private_providers, why, sizeof(why)) != 0) {
            tg_api_error(r, 400, "invalid_url", "Provider: %s", json_is_string(v) ? why : "must be a string");
            return -1;
        }
        json_object_set(rec, "Provider", v);
        json_object_set(audit, "Provider", v);
    }
    if ((v = json_object_get(body, "Status"))) {
        if (!json_is_boolean(v)) {
            tg_api_error(r, 400, "invalid_type", "Status: must be true or false");
            return -1;
        }
        json_object_set(rec, "Status", v);
        json_object_set(audit, "Status", v);
    }
    json_t *cfg = json_object_get(body, "config");
    const char *cfg_name = "config";
    if (cfg == NULL) {
        cfg = json_object_get(body, "Config");
        cfg_name = "Config";
    }
    if (cfg) {
        if (!json_is_object(cfg)) {
            tg_api_error(r, 400, "invalid_type", "%s: must be an object", cfg_name);
            return -1;
        }
        json_t *kept = json_object();
        json_object_foreach(cfg, k, v)
        {
            if (strcmp(k, "protocol") == 0) {
                tg_protocol_t proto;
                if (!json_is_string(v) || tg_protocol_parse(json_string_value(v), &proto) != 0) {
                    json_decref(kept);
                    tg_api_error(r, 400, "invalid_value", "%s.protocol: must be openai, anthropic, gemini or router", cfg_name);
                    return -1;
                }
                json_object_set(rec, "Protocol", v);
            } else if (strcmp(k, "provider_type") == 0) {
                const char *t = json_is_string(v) ? json_string_value(v) : "";
                if (strcmp(t, "standard") != 0 && strcmp(t, "azure") != 0 && strcmp(t, "vertex") != 0) {
                    json_decref(kept);
                    tg_api_error(r, 400, "invalid_value", "%s.provider_type: must be standard, azure or vertex", cfg_name);
                    return -1;
                }
                json_object_set(kept, k, v);
            } else if (json_is_string(v) || json_is_number(v) || json_is_boolean(v)) {
                json_object_set(kept, k, v);
            } else {
                json_decref(kept);
                tg_api_error(r, 400, "invalid_value", "%s.%s: must be a string, number or boolean", cfg_name, k);
                return -1;
            }
        }
        json_object_set_new(rec, "Config", kept);
        json_object_set(audit, "config", json_object_get(rec, "Config"));
    }
    if ((v = json_object_get(body, "SecretKey"))) {
        const char *sec = json_is_string(v) ? json_string_value(v) : "";
        size_t n = strlen(sec);
        int bad = !json_is_string(v) || n < 20 || n > TG_SECRET_MAX;
        for (size_t i = 0; !bad && i < n; i++)
            bad = (unsigned char)sec[i] <= ' ' || (unsigned char)sec[i] >= 0x7f;
        if (bad) {
            tg_api_error(r, 400, "invalid_value", "SecretKey: must be %d to %d printable characters without spaces", 20,
                         TG_SECRET_MAX);
            return -1;
        }
        if (!r->store->have_master_key) {
            tg_api_error(r, 500, NULL, "the master key is not loaded");
            return -1;
        }
        uint8_t sealed[TG_SEALED_MAX];
        char hex[2 * TG_SEALED_MAX + 1];
        int sn = tg_seal(r->store->master_key, sec, n, sealed, sizeof(sealed));
        if (sn < 0) {
            tg_api_error(r, 500, NULL, "sealing the secret failed");
            return -1;
        }
        tg_hex(sealed, (size_t)sn, hex);
        json_object_set_new(rec, "Sealed", json_string(hex));
        json_object_set_new(audit, "SecretKey", json_string("***"));
    }
    return 0;
}

static int key_commit(tg_api_req_t *r, rocksdb_writebatch_t *b, const json_t *rec, const char *action, json_t *audit)
{
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    tg_store_json_put(b, r->store, TG_CF_UPSTREAMS, id, rec);
    json_object_set_new(audit, "KeyID", json_integer((json_int_t)id));
    tg_api_audit(r, b, action, NULL, audit);
    char *err = NULL;
    if (tg_store_commit(r->store, b, &err) != 0) {
        tg_error("x-keys: %s %llu: %s", action, (unsigned long long)id, err ? err : "?");
        free(err);
        tg_api_error(r, 500, NULL, "the key could not be stored");
        return -1;
    }
    return 0;
}

void tg_api_keys_create(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    if (r->rest.len > 1) { /* POST /x-keys/{id} is an update */
        tg_api_keys_update(r);
        return;
    }
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    uint64_t id = 0;
    json_t *rec = NULL, *audit = json_object();
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    if (tg_store_meta_get(r->store, TG_META_NEXT_UPSTREAM_ID, &id) != 1 || id == 0) {
        tg_api_error(r, 500, NULL, "the key counter cannot be read");
        goto done;
    }
    char ts[21];
    tg_rfc3339(time(NULL), ts);
    rec = json_pack("{s:I, s:s, s:i, s:s, s:s, s:b, s:I, s:s, s:s, s:s}", "ID", (json_int_t)id, "Name", "", "Level", 1, "Provider",
                    "", "Protocol", "openai", "Status", 1, "OwnerID", (json_int_t)owner_of_caller(r), "Sealed", "", "CreatedAt", ts,
                    "UpdatedAt", ts);
    if (apply_key_fields(r, body, rec, 1, audit) != 0)
        goto done;
    tg_store_meta_put(b, r->store, TG_META_NEXT_UPSTREAM_ID, id + 1);
    if (key_commit(r, b, rec, "add_key", audit) != 0) {
        audit = NULL;
        goto done;
    }
    audit = NULL;
    publish_upstream(r, rec);
    tg_api_send(r, 200, json_pack("{s:b, s:o}", "success", 1, "key", key_view(rec)));
done:
    json_decref(audit);
    json_decref(rec);
    json_decref(body);
    rocksdb_writebatch_destroy(b);
}

/* The caller's key named by the path, or NULL (answered). */
static json_t *own_key(tg_api_req_t *r)
{
    char *end;
    uint64_t id = r->rest.len > 1 ? strtoull(r->rest.base + 1, &end, 10) : 0;
    if (id == 0 || end != r->rest.base + r->rest.len) {
        tg_api_error(r, 400, "missing_identifier", "use /x-keys/{id}");
        return NULL;
    }
    json_t *rec = tg_store_json_get(r->store, TG_CF_UPSTREAMS, id);
    if (rec == NULL || tg_rec_u64(rec, "OwnerID", 0) != owner_of_caller(r)) {
        json_decref(rec);
        tg_api_error(r, 404, "key_not_found", "no key %llu in this owner's pool", (unsigned long long)id);
        return NULL;
    }
    return rec;
}

void tg_api_keys_update(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *rec = own_key(r);
    if (rec == NULL)
        return;
    json_t *body = tg_api_body(r), *audit = json_object();
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    if (body == NULL || apply_key_fields(r, body, rec, 0, audit) != 0)
        goto done;
    char ts[21];
    tg_rfc3339(time(NULL), ts);
    json_object_set_new(rec, "UpdatedAt", json_string(ts));
    json_t *a = audit;
    audit = NULL;
    if (key_commit(r, b, rec, "update_key", a) != 0)
        goto done;
    publish_upstream(r, rec);
    tg_api_send(r, 200, json_pack("{s:b, s:o}", "success", 1, "key", key_view(rec)));
done:
    json_decref(audit);
    json_decref(body);
    json_decref(rec);
    rocksdb_writebatch_destroy(b);
}

void tg_api_keys_delete(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *rec = own_key(r);
    if (rec == NULL)
        return;
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    uint8_t key[8];
    tg_be64_put(key, id);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_cf(b, r->store->cf[TG_CF_UPSTREAMS], (const char *)key, 8);
    tg_api_audit(r, b, "delete_key", NULL, json_pack("{s:I, s:s}", "KeyID", (json_int_t)id, "Name", tg_rec_str(rec, "Name", "")));
    char *err = NULL;
    if (tg_store_commit(r->store, b, &err) != 0) {
        free(err);
        tg_api_error(r, 500, NULL, "the key could not be deleted");
    } else {
        int64_t slot = r->store->slots_ready ? tg_slotmap_find(&r->store->up_slots, id) : -1;
        if (slot >= 0 && r->arena) {
            tg_upstream_unpublish(r->arena, (uint32_t)slot);
            tg_slotmap_remove(&r->store->up_slots, id);
            atomic_fetch_add(&r->arena->hdr->settings_gen, 1);
        }
        tg_api_send(r, 200, json_pack("{s:b, s:o}", "success", 1, "deleted", key_view(rec)));
    }
    rocksdb_writebatch_destroy(b);
    json_decref(rec);
}

/* ---- /x-config ---- */

static json_t *config_view(const json_t *conf)
{
    json_t *out = json_deep_copy(conf);
    if (json_object_get(out, "EMAIL_PASS"))
        json_object_set_new(out, "EMAIL_PASS", json_string("***"));
    return out;
}

static int config_store(tg_api_req_t *r, uint64_t owner, json_t *conf, const char *action, json_t *details)
{
    char *cerr = NULL;
    if (tg_store_owner_config_check(conf, &cerr) != 0) {
        tg_api_error(r, 400, "invalid_value", "%s", cerr ? cerr : "the configuration cannot be compiled");
        free(cerr);
        json_decref(details);
        return -1;
    }
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    tg_store_json_put(b, r->store, TG_CF_CONFIG, owner, conf);
    tg_api_audit(r, b, action, NULL, details);
    char *err = NULL;
    int rc = tg_store_commit(r->store, b, &err);
    rocksdb_writebatch_destroy(b);
    if (rc != 0) {
        tg_error("x-config: owner %llu: %s", (unsigned long long)owner, err ? err : "?");
        free(err);
        tg_api_error(r, 500, NULL, "the configuration could not be stored");
        return -1;
    }
    tg_store_publish_owner_config(r->store, r->arena, owner, conf);
    return 0;
}

void tg_api_config_get(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    uint64_t owner = owner_of_caller(r);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    if (conf == NULL)
        conf = json_object();
    json_t *view = config_view(conf);
    json_decref(conf);
    tg_api_send(r, 200, json_pack("{s:b, s:I, s:o}", "success", 1, "oid", (json_int_t)owner, "configs", view));
}

void tg_api_config_put(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    uint64_t owner = owner_of_caller(r);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    if (conf == NULL)
        conf = json_object();
    json_t *updated = json_object();
    const char *k;
    json_t *v;
    char why[200];
    if (json_object_size(body) == 0) {
        tg_api_error(r, 400, "missing_field", "the body names no configuration key");
        goto done;
    }
    json_object_foreach(body, k, v)
    {
        const tg_conf_key_t *ck = tg_conf_key(k);
        if (ck == NULL) {
            tg_api_error(r, 400, "unknown_field", "%s: unknown configuration key", k);
            goto done;
        }
        json_t *nv = tg_conf_value(ck, json_object_get(conf, k), v, why, sizeof(why));
        if (nv == NULL) {
            tg_api_error(r, 400, "invalid_value", "%s: %s", k, why);
            goto done;
        }
        json_object_set_new(conf, k, nv);
        json_object_set_new(updated, k, ck->kind == 'P' ? json_string("***") : json_incref(nv));
    }
    if (config_store(r, owner, conf, "update_config", json_deep_copy(updated)) != 0)
        goto done;
    tg_api_send(r, 200, json_pack("{s:b, s:O, s:s}", "success", 1, "updated", updated, "message", "configuration updated"));
done:
    json_decref(updated);
    json_decref(conf);
    json_decref(body);
}

void tg_api_config_delete(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    uint64_t owner = owner_of_caller(r);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner), *deleted = json_array();
    if (conf == NULL)
        conf = json_object();
    json_t *keys = json_object_get(body, "keys");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) if (strcmp(k, "keys") != 0)
    {
        tg_api_error(r, 400, "unknown_field", "%s: unknown field (send {\"keys\":[...]})", k);
        goto done;
    }
    if (!json_is_array(keys) || json_array_size(keys) == 0) {
        tg_api_error(r, 400, "missing_field", "keys: must be a non-empty array of configuration keys");
        goto done;
    }
    size_t i;
    json_array_foreach(keys, i, v)
    {
        if (!json_is_string(v) || tg_conf_key(json_string_value(v)) == NULL) {
            tg_api_error(r, 400, "invalid_value", "keys[%zu]: not a configuration key", i);
            goto done;
        }
        if (json_object_get(conf, json_string_value(v))) {
            json_object_del(conf, json_string_value(v));
            json_array_append(deleted, v);
        }
    }
    if (config_store(r, owner, conf, "delete_config", json_pack("{s:O}", "keys", deleted)) != 0)
        goto done;
    tg_api_send(r, 200, json_pack("{s:b, s:O, s:s}", "success", 1, "deleted", deleted, "message",
                                  "the keys are back to their defaults"));
done:
    json_decref(deleted);
    json_decref(conf);
    json_decref(body);
}

/* ---- /x-conf ---- */

static const struct {
    const char *camel, *key;
} g_conf_map[] = {{"Resources", "RESOURCES"},         {"LevelMapper", "LEVEL_MAPPER"}, {"ModelMapper", "MODEL_MAPPER"},
                  {"ModelFailover", "MODEL_FAILOVER"}, {"ModelLimits", "MODEL_LIMITS"}, {"SwitchOver", "SWITCH_OVER"}};

void tg_api_conf_get(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    uint64_t owner = owner_of_caller(r);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof(g_conf_map) / sizeof(g_conf_map[0]); i++) {
        json_t *v = json_object_get(conf, g_conf_map[i].key);
        json_object_set_new(out, g_conf_map[i].camel,
                            v ? json_incref(v) : strcmp(g_conf_map[i].camel, "ModelLimits") == 0 ? json_object() : json_string(""));
    }
    json_t *sleeping = json_array(), *disabled = json_array();
    uint64_t now = tg_now_ms();
    if (r->arena) {
        for (uint32_t slot = 0; slot < tg_upstream_count(r->arena) && slot < r->arena->hdr->max_upstreams; slot++) {
            tg_upstream_settings_t st;
            if (tg_upstream_read(r->arena, slot, &st) != 0 || st.owner_id != owner)
                continue;
            explicit_bzero(st.sealed, sizeof(st.sealed));
            json_t *item = json_pack("{s:I, s:s, s:i}", "ID", (json_int_t)st.id, "Name", st.name, "Level", st.level);
            if (!(st.flags & TG_UPSTREAM_ENABLED))
                json_array_append(disabled, item);
            else if (atomic_load(&r->arena->upstreams[slot].sleep_until_ms) > now)
                json_array_append(sleeping, item);
            json_decref(item);
        }
    }
    json_object_set_new(out, "SleepingKeys", sleeping);
    json_object_set_new(out, "DisabledKeys", disabled);
    json_object_set_new(out, "UserMinBalance", json_real(tg_api_owner_number(r, r->caller, "USER_MIN_BALANCE", 2.0)));
    json_object_set_new(out, "UserApiBalance", json_real(tg_api_owner_number(r, r->caller, "USER_API_BALANCE", 20.0)));
    json_decref(conf);
    tg_api_send(r, 200, out);
}

void tg_api_conf_post(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *body = tg_api_body(r);
    if (body == NULL)
        return;
    uint64_t owner = owner_of_caller(r);
    json_t *conf = tg_store_json_get(r->store, TG_CF_CONFIG, owner);
    if (conf == NULL)
        conf = json_object();
    json_t *updated = json_object();
    tg_txn_t t;
    tg_txn_init(&t, r->store, r->arena);
    const char *k;
    json_t *v;
    char why[200];
    json_object_foreach(body, k, v)
    {
        const char *key = NULL;
        for (size_t i = 0; i < sizeof(g_conf_map) / sizeof(g_conf_map[0]); i++)
            if (strcmp(g_conf_map[i].camel, k) == 0 && strcmp(k, "SwitchOver") != 0)
                key = g_conf_map[i].key;
        int root_toggle = strcmp(k, "LogEnable") == 0 || strcmp(k, "LoadKeys") == 0 || strcmp(k, "StatsInterval") == 0;
        if (key == NULL && !root_toggle) {
            tg_api_error(r, 400, "unknown_field", "%s: not a writable setting (Resources, LevelMapper, ModelMapper, ModelFailover, ModelLimits)", k);
            goto done;
        }
        if (root_toggle) {
            if (r->caller_id != TG_ROOT_ID) {
                tg_api_error(r, 403, "not_root", "%s: only root may set it", k);
                goto done;
            }
            if ((strcmp(k, "StatsInterval") == 0 && !json_is_integer(v)) || (strcmp(k, "StatsInterval") != 0 && !json_is_boolean(v))) {
                tg_api_error(r, 400, "invalid_type", "%s: must be %s", k, strcmp(k, "StatsInterval") == 0 ? "an integer" : "true or false");
                goto done;
            }
            json_object_set(updated, k, v); /* accepted for compatibility; tollgate drains continuously */
            continue;
        }
        json_t *nv = tg_conf_value(tg_conf_key(key), json_object_get(conf, key), v, why, sizeof(why));
        if (nv == NULL) {
            tg_api_error(r, 400, "invalid_value", "%s: %s", k, why);
            goto done;
        }
        json_object_set_new(conf, key, nv);
        json_object_set(updated, k, nv);
    }
    /* cascade the user-level fields to every account of the owner's tree */
    json_t *top = tg_store_json_get(r->store, TG_CF_ACCOUNTS, owner);
    json_t *tree = top ? tg_manage_subtree(r, top, 0, 1) : json_array();
    json_decref(top);
    static const struct {
        const char *camel;
        const char *field;
    } user_fields[] = {{"Resources", "Resources"}, {"ModelMapper", "ModelMapper"}, {"LevelMapper", "LevelMapper"}, {"ModelLimits", "ModelLimits"}};
    size_t i;
    json_t *rec;
    json_array_foreach(tree, i, rec)
    {
        json_t *d = NULL;
        for (size_t f = 0; f < sizeof(user_fields) / sizeof(user_fields[0]); f++) {
            json_t *nv = json_object_get(updated, user_fields[f].camel);
            if (nv == NULL)
                continue;
            if (d == NULL && (d = tg_txn_load(&t, tg_rec_u64(rec, "ID", 0))) == NULL)
                break;
            json_object_set(d, user_fields[f].field, nv);
        }
    }
    json_decref(tree);
    char *cerr = NULL;
    if (tg_store_owner_config_check(conf, &cerr) != 0) {
        tg_api_error(r, 400, "invalid_value", "%s", cerr ? cerr : "the configuration cannot be compiled");
        free(cerr);
        goto done;
    }
    tg_store_json_put(t.b, r->store, TG_CF_CONFIG, owner, conf);
    tg_api_audit(r, t.b, "update_conf", NULL, json_deep_copy(updated));
    char *err = NULL;
    if (tg_txn_commit(&t, &err) != 0) {
        tg_error("x-conf: owner %llu: %s", (unsigned long long)owner, err ? err : "?");
        free(err);
        tg_api_error(r, 500, NULL, "the configuration could not be stored");
        goto done;
    }
    tg_store_publish_owner_config(r->store, r->arena, owner, conf);
    tg_api_send(r, 200, json_pack("{s:b, s:O, s:s}", "success", 1, "updated", updated, "message",
                                  "configuration updated and applied to the owner's accounts"));
done:
    tg_txn_dispose(&t);
    json_decref(updated);
    json_decref(conf);
    json_decref(body);
}

/* ---- /x-news ---- */

void tg_api_news_post(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *body = tg_api_body(r), *target = NULL;
    if (body == NULL)
        return;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) if (strcmp(k, "title") && strcmp(k, "content") && strcmp(k, "days"))
    {
        tg_api_error(r, 400, "unknown_field", "%s: unknown field", k);
        goto done;
    }
    json_t *title = json_object_get(body, "title"), *content = json_object_get(body, "content"), *days = json_object_get(body, "days");
    if (!json_is_string(title) || !*json_string_value(title) || strlen(json_string_value(title)) > 200) {
        tg_api_error(r, 400, "invalid_value", "title: required, 1..200 characters");
        goto done;
    }
    if (!json_is_string(content) || strlen(json_string_value(content)) > 10000) {
        tg_api_error(r, 400, "invalid_value", "content: required, at most 10000 characters");
        goto done;
    }
    if (days && (!json_is_number(days) || !(json_number_value(days) > 0 && json_number_value(days) <= 3650))) {
        tg_api_error(r, 400, "invalid_value", "days: must be a number more than 0 and at most 3650");
        goto done;
    }
    const char *dna = "";
    if (r->rest.len > 1) {
        char ident[320];
        snprintf(ident, sizeof(ident), "%.*s", (int)(r->rest.len - 1), r->rest.base + 1);
        if ((target = tg_manage_resolve(r, ident, 1)) == NULL)
            goto done;
        dna = tg_rec_str(target, "DNA", "");
    } else if (r->caller_id != TG_ROOT_ID) {
        dna = tg_rec_str(r->caller, "DNA", ""); /* an owner's news reaches its subtree */
    }
    double d = days ? json_number_value(days) : (*dna ? 32 : 7);
    uint64_t id = 0;
    if (tg_store_meta_get(r->store, TG_META_NEXT_NEWS_ID, &id) < 0) {
        tg_api_error(r, 500, NULL, "the news counter cannot be read");
        goto done;
    }
    if (id == 0)
        id = 1;
    time_t now = time(NULL);
    char created[21], expires[21];
    tg_rfc3339(now, created);
    tg_rfc3339(now + (time_t)(d * 86400), expires);
    json_t *news = json_pack("{s:I, s:O, s:O, s:s, s:I, s:I, s:s, s:s}", "id", (json_int_t)id, "title", title, "content", content,
                             "target_dna", dna, "target_id", (json_int_t)(target ? tg_rec_u64(target, "ID", 0) : 0), "author_id",
                             (json_int_t)r->caller_id, "created_at", created, "expires_at", expires);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    tg_store_json_put(b, r->store, TG_CF_NEWS, id, news);
    tg_store_meta_put(b, r->store, TG_META_NEXT_NEWS_ID, id + 1);
    tg_api_audit(r, b, "add_news", target, json_pack("{s:I, s:O, s:s}", "NewsID", (json_int_t)id, "title", title, "target", dna));
    char *err = NULL;
    if (tg_store_commit(r->store, b, &err) != 0) {
        free(err);
        json_decref(news);
        tg_api_error(r, 500, NULL, "the news could not be stored");
    } else {
        json_object_del(news, "target_dna");
        tg_api_send(r, 200, json_pack("{s:b, s:o}", "success", 1, "news", news));
    }
    rocksdb_writebatch_destroy(b);
done:
    json_decref(target);
    json_decref(body);
}

void tg_api_news_delete(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    json_t *target = NULL;
    const char *dna = "";
    if (r->rest.len > 1) {
        char ident[320];
        snprintf(ident, sizeof(ident), "%.*s", (int)(r->rest.len - 1), r->rest.base + 1);
        if ((target = tg_manage_resolve(r, ident, 1)) == NULL)
            return;
        dna = tg_rec_str(target, "DNA", "");
    } else if (r->caller_id != TG_ROOT_ID) {
        dna = tg_rec_str(r->caller, "DNA", "");
    }
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(r->store->db, r->store->ro, r->store->cf[TG_CF_NEWS]);
    size_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *key = rocksdb_iter_key(it, &klen), *v = rocksdb_iter_value(it, &vlen);
        json_t *e = json_loadb(v, vlen, 0, NULL);
        if (e && strcmp(tg_rec_str(e, "target_dna", "?"), dna) == 0 &&
            (r->caller_id == TG_ROOT_ID || tg_rec_u64(e, "author_id", 0) == r->caller_id || *dna)) {
            rocksdb_writebatch_delete_cf(b, r->store->cf[TG_CF_NEWS], key, klen);
            n++;
        }
        json_decref(e);
    }
    rocksdb_iter_destroy(it);
    tg_api_audit(r, b, "delete_news", target, json_pack("{s:s, s:I}", "target", dna, "count", (json_int_t)n));
    char *err = NULL;
    if (tg_store_commit(r->store, b, &err) != 0) {
        free(err);
        tg_api_error(r, 500, NULL, "the news could not be deleted");
    } else {
        tg_api_send(r, 200, json_pack("{s:b, s:I}", "success", 1, "deleted", (json_int_t)n));
    }
    rocksdb_writebatch_destroy(b);
    json_decref(target);
}

/* ---- /x-gkey, /x-logs ---- */

void tg_api_gkey(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    char key[TG_KEY_LEN + 1];
    if (tg_key_generate(key) != 0) {
        tg_api_error(r, 500, NULL, "the random number generator failed");
        return;
    }
    tg_api_send(r, 200, json_pack("{s:b, s:s}", "success", 1, "key", key));
    explicit_bzero(key, sizeof(key));
}

void tg_api_logs(tg_api_req_t *r)
{
    if (tg_api_require_admin(r) != 0)
        return;
    char who[320];
    json_t *top = NULL, *subtree;
    if (tg_api_query2(r, "u", "user", who, sizeof(who)) == 1 && *who) {
        if ((top = tg_manage_resolve(r, who, 1)) == NULL)
            return;
        subtree = tg_manage_subtree(r, top, 0, 1);
    } else {
        subtree = tg_manage_subtree(r, r->caller, 0, 0); /* descendants */
    }
    tg_requests_reply(r, subtree);
    json_decref(subtree);
    json_decref(top);
}

/* ---- /x-bill ---- */

typedef struct bill {
    json_t *days;  /* day → {n_requests, prompt, completion, cached, usage_details{model:{requests,prompt,completion,cost}}} */
    tg_rollup_t all;
    tg_rollup_t user;
} bill_t;

static void jadd(json_t *o, const char *k, json_int_t v)
{
    json_t *x = json_object_get(o, k);
    json_object_set_new(o, k, json_integer((x ? json_integer_value(x) : 0) + v));
}

static int bill_add(void *ud, uint64_t id, const char *day, const char *model, const tg_rollup_t *x)
{
    bill_t *b = ud;
    json_t *d = json_object_get(b->days, day);
    if (d == NULL) {
        d = json_object();
        json_object_set_new(d, "usage_details", json_object());
        json_object_set_new(b->days, day, d);
    }
    jadd(d, "n_requests", (json_int_t)x->requests);
    jadd(d, "n_context_tokens_total", (json_int_t)x->prompt);
    jadd(d, "n_generated_tokens_total", (json_int_t)x->completion);
    jadd(d, "n_cached_tokens_total", (json_int_t)x->cached);
    json_t *m = json_object_get(json_object_get(d, "usage_details"), model);
    if (m == NULL) {
        m = json_object();
        json_object_set_new(json_object_get(d, "usage_details"), model, m);
    }
    jadd(m, "requests", (json_int_t)x->requests);
    jadd(m, "prompt", (json_int_t)x->prompt);
    jadd(m, "completion", (json_int_t)x->completion);
    jadd(m, "cost_nanos", (json_int_t)x->cost_nanos);
    tg_rollup_add(&b->all, x);
    tg_rollup_add(&b->user, x);
    return 0;
}

void tg_api_bill(tg_api_req_t *r)
{
    if (tg_api_require_manage(r) != 0)
        return;
    char from[11], to[11], who[320];
    if (tg_query_days(r, 1, 366, from, to) != 0)
        return;
    json_t *accounts;
    if (tg_api_query2(r, "u", "user", who, sizeof(who)) == 1 && *who) {
        json_t *all = tg_manage_subtree(r, r->caller, 0, 0);
        accounts = json_array();
        int is_f = strchr("LGRTF", who[0]) && who[1] && isdigit((unsigned char)who[1]);
        uint64_t id = is_f ? 0 : tg_manage_ident_id(r->store, who);
        size_t i;
        json_t *rec;
        json_array_foreach(all, i, rec)
        {
            int keep;
            if (is_f) {
                static const char *const names[] = {"Level", "Gear", "Role", "Tier", "Factor"};
                json_t *fv = json_object_get(rec, names[strchr("LGRTF", who[0]) - "LGRTF"]);
                double have = json_is_number(fv) ? json_number_value(fv) : (who[0] == 'L' || who[0] == 'F' ? 1 : 0);
                keep = have == strtod(who + 1, NULL);
            } else {
                keep = tg_rec_u64(rec, "ID", 0) == id;
            }
            if (keep)
                json_array_append(accounts, rec);
        }
        json_decref(all);
        if (!is_f && json_array_size(accounts) == 0) {
            json_decref(accounts);
            tg_api_error(r, id ? 403 : 404, id ? "not_ancestor" : "account_not_found", "u: %s is not a descendant of the caller", who);
            return;
        }
    } else {
        accounts = tg_manage_subtree(r, r->caller, 0, 0);
    }
    bill_t b = {json_object(), {0}, {0}};
    json_t *users = json_array();
    size_t i;
    json_t *rec;
    json_array_foreach(accounts, i, rec)
    {
        memset(&b.user, 0, sizeof(b.user));
        tg_rollups_each(r->store, tg_rec_u64(rec, "ID", 0), from, to, bill_add, &b);
        if (b.user.requests == 0 && b.user.cost_nanos == 0)
            continue;
        json_array_append_new(users, json_pack("{s:I, s:s, s:s, s:I, s:I}", "id", (json_int_t)tg_rec_u64(rec, "ID", 0), "name",
                                               tg_rec_str(rec, "Name", ""), "email", tg_rec_str(rec, "Email", ""),
                                               "total_requests", (json_int_t)b.user.requests, "total_cost_nanos",
                                               (json_int_t)b.user.cost_nanos));
    }
    json_decref(accounts);
    json_array_foreach(users, i, rec)
    {
        double req = (double)json_integer_value(json_object_get(rec, "total_requests"));
        double cost = (double)json_integer_value(json_object_get(rec, "total_cost_nanos"));
        json_object_set_new(rec, "total_cost", json_real(cost / 1e9));
        json_object_del(rec, "total_cost_nanos");
        json_object_set_new(rec, "usage_analysis",
                            json_pack("{s:f, s:f}", "request_percentage", b.all.requests ? 100.0 * req / (double)b.all.requests : 0.0,
                                      "cost_percentage", b.all.cost_nanos ? 100.0 * cost / (double)b.all.cost_nanos : 0.0));
    }
    json_t *data = json_array();
    const char *day;
    json_t *d;
    json_object_foreach(b.days, day, d)
    {
        json_object_set_new(d, "date", json_string(day));
        json_object_set_new(d, "aggregation_timestamp", json_integer((json_int_t)tg_day_start(day)));
        const char *model;
        json_t *m;
        json_object_foreach(json_object_get(d, "usage_details"), model, m)
        {
            json_object_set_new(m, "cost", json_real((double)json_integer_value(json_object_get(m, "cost_nanos")) / 1e9));
            json_object_del(m, "cost_nanos");
        }
        json_array_append(data, d);
    }
    json_decref(b.days);
    tg_api_send(r, 200,
                json_pack("{s:s, s:s, s:s, s:o, s:{s:I, s:o}, s:o}", "object", "list", "start", from, "end", to, "data", data,
                          "total_usage", "requests", (json_int_t)b.all.requests, "cost", tg_api_money(b.all.cost_nanos),
                          "usage_users", users));
}
