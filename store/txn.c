/* Management write transactions (txn.h). */
#include "store/txn.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "shm/accounts.h"
#include "shm/policy.h"
#include "store/account_rec.h"
#include "store/expiry.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"

void tg_txn_init(tg_txn_t *t, tg_store_t *s, tg_arena_t *arena)
{
    memset(t, 0, sizeof(*t));
    t->s = s;
    t->arena = arena;
    t->b = rocksdb_writebatch_create();
    t->now_ms = tg_now_ms();
    t->now = (time_t)(t->now_ms / 1000);
}

void tg_txn_dispose(tg_txn_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        json_decref(t->acct[i].rec);
    free(t->acct);
    if (t->b)
        rocksdb_writebatch_destroy(t->b);
    memset(t, 0, sizeof(*t));
}

static tg_txn_acct_t *track(tg_txn_t *t, json_t *rec, int is_new)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        tg_txn_acct_t *a = realloc(t->acct, cap * sizeof(*a));
        if (a == NULL)
            return NULL;
        t->acct = a;
        t->cap = cap;
    }
    tg_txn_acct_t *e = &t->acct[t->n++];
    e->rec = rec;
    e->balance0 = is_new ? 0 : tg_acct_balance(rec);
    e->is_new = is_new;
    e->deleted = 0;
    return e;
}

json_t *tg_txn_load(tg_txn_t *t, uint64_t id)
{
    for (size_t i = 0; i < t->n; i++)
        if (tg_rec_u64(t->acct[i].rec, "ID", 0) == id)
            return t->acct[i].deleted ? NULL : t->acct[i].rec;
    json_t *rec = NULL;
    if (tg_store_json_load(t->s, TG_CF_ACCOUNTS, id, &rec) != TG_LOAD_OK)
        return NULL;
    if (track(t, rec, 0) == NULL) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

json_t *tg_txn_add_new(tg_txn_t *t, json_t *rec)
{
    if (rec == NULL)
        return NULL;
    if (track(t, rec, 1) == NULL) {
        json_decref(rec);
        return NULL;
    }
    return rec;
}

void tg_txn_delete(tg_txn_t *t, json_t *rec)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->acct[i].rec == rec)
            t->acct[i].deleted = 1;
}

int tg_txn_commit(tg_txn_t *t, char **err)
{
    for (size_t i = 0; i < t->n; i++) {
        tg_txn_acct_t *e = &t->acct[i];
        uint64_t id = tg_rec_u64(e->rec, "ID", 0);
        if (e->deleted) {
            uint8_t key[8], hash[32];
            tg_be64_put(key, id);
            rocksdb_writebatch_delete_cf(t->b, t->s->cf[TG_CF_ACCOUNTS], (const char *)key, 8);
            const char *hex = tg_rec_str(e->rec, "KeyHash", "");
            if (tg_unhex(hex, strlen(hex), hash, 32) == 32)
                rocksdb_writebatch_delete_cf(t->b, t->s->cf[TG_CF_KEYHASH], (const char *)hash, 32);
            tg_acctrec_index_del(t->b, t->s, e->rec);
            continue;
        }
        if (tg_store_json_put(t->b, t->s, TG_CF_ACCOUNTS, id, e->rec) != 0)
            return tg_store_fail(err, "account %llu cannot be encoded", (unsigned long long)id);
    }
    if (tg_store_commit(t->s, t->b, err) != 0)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        tg_txn_acct_t *e = &t->acct[i];
        uint64_t id = tg_rec_u64(e->rec, "ID", 0);
        if (e->deleted) {
            tg_expiry_forget(t->s, id);
            if (t->arena)
                tg_store_unpublish_account(t->s, t->arena, id);
            continue;
        }
        tg_expiry_note(t->s, e->rec);
        if (t->arena)
            tg_store_publish_account(t->s, t->arena, e->rec, e->is_new ? 0 : tg_acct_balance(e->rec) - e->balance0);
    }
    if (t->arena)
        atomic_fetch_add(&t->arena->hdr->settings_gen, 1);
    return 0;
}

void tg_store_publish_account(tg_store_t *s, tg_arena_t *arena, const json_t *rec, int64_t balance_delta)
{
    if (!s->slots_ready)
        return;
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    int64_t had = tg_slotmap_find(&s->acct_slots, id);
    int64_t slot = had >= 0 ? had : tg_slotmap_assign(&s->acct_slots, id);
    if (slot < 0) {
        tg_error("publish: no free arena slot for account %llu (raise arena.max_accounts)", (unsigned long long)id);
        return;
    }
    tg_account_settings_t st;
    int ok = tg_acctrec_settings(rec, &st) == 0;
    if (ok)
        tg_store_account_links(s, rec, &st);
    if (!ok || tg_account_publish(arena, (uint32_t)slot, &st) != 0) {
        tg_error("publish: account %llu could not be published", (unsigned long long)id);
        if (had < 0) {
            tg_slotmap_remove(&s->acct_slots, id);
            tg_account_unpublish(arena, (uint32_t)slot);
        }
        return;
    }
    tg_account_t *a = &arena->accounts[slot];
    if (had < 0) {
        atomic_store(&a->balance, tg_acctrec_arena_balance(rec));
        atomic_store(&a->reserved, 0);
        atomic_store(&a->spent, 0);
    } else if (id != TG_ROOT_ID && balance_delta != 0) {
        atomic_fetch_add(&a->balance, balance_delta);
    }
}

void tg_store_unpublish_account(tg_store_t *s, tg_arena_t *arena, uint64_t id)
{
    if (!s->slots_ready)
        return;
    int64_t slot = tg_slotmap_find(&s->acct_slots, id);
    if (slot < 0)
        return;
    tg_account_unpublish(arena, (uint32_t)slot);
    tg_slotmap_remove(&s->acct_slots, id);
}

/* The owner config object as the quota engine's tg_owner_conf_t; the strings it points to live in
 * CONF or in *JSON_TEXT (malloc'd, free both with owner_conf_free). */
typedef struct owner_conf_buf {
    tg_owner_conf_t c;
    char *limits, *prices;
} owner_conf_buf_t;

static const char *conf_str(const json_t *conf, const char *key)
{
    const char *s = tg_rec_str(conf, key, "");
    return *s ? s : NULL;
}

static void owner_conf_from(owner_conf_buf_t *b, const json_t *conf)
{
    tg_owner_conf_t unset = TG_OWNER_CONF_UNSET;
    b->c = unset;
    b->limits = b->prices = NULL;
    b->c.model_mapper = conf_str(conf, "MODEL_MAPPER");
    b->c.level_mapper = conf_str(conf, "LEVEL_MAPPER");
    b->c.switch_over = conf_str(conf, "SWITCH_OVER");
    b->c.model_failover = conf_str(conf, "MODEL_FAILOVER");
    b->c.resources = conf_str(conf, "RESOURCES");
    json_t *ml = json_object_get(conf, "MODEL_LIMITS"), *pr = json_object_get(conf, "PRICES"),
           *au = json_object_get(conf, "ALLOW_UNPRICED");
    if (json_is_object(ml) && json_object_size(ml))
        b->c.model_limits = b->limits = json_dumps(ml, JSON_COMPACT);
    if (json_is_object(pr) && json_object_size(pr))
        b->c.prices = b->prices = json_dumps(pr, JSON_COMPACT);
    if (json_is_boolean(au))
        b->c.allow_unpriced = json_is_true(au);
}

static void owner_conf_free(owner_conf_buf_t *b)
{
    free(b->limits);
    free(b->prices);
}

int tg_store_owner_config_check(const json_t *conf, char **err)
{
    owner_conf_buf_t b;
    owner_conf_from(&b, conf);
    int rc = tg_policy_owner_check(&b.c, err);
    owner_conf_free(&b);
    return rc;
}

static int set_owner(tg_arena_t *arena, uint64_t owner_id, const json_t *conf)
{
    owner_conf_buf_t b;
    owner_conf_from(&b, conf);
    char *err = NULL;
    int rc = tg_policy_set_owner(arena, owner_id, json_object_size(conf) ? &b.c : NULL, &err);
    if (rc != 0) {
        tg_error("policy: owner %llu's config: %s", (unsigned long long)owner_id, err ? err : "rejected");
        free(err);
    }
    owner_conf_free(&b);
    return rc;
}

void tg_store_publish_owner_config(tg_store_t *s, tg_arena_t *arena, uint64_t owner_id, const json_t *conf)
{
    (void)s;
    if (arena == NULL)
        return;
    char *err = NULL;
    if (set_owner(arena, owner_id, conf) == 0 && tg_policy_publish(arena, &err) != 0) {
        tg_error("policy: publishing the snapshot: %s", err ? err : "failed");
        free(err);
    }
    atomic_fetch_add(&arena->hdr->settings_gen, 1);
}

static int load_owner(void *ud, const char *key, size_t klen, const char *val, size_t vlen)
{
    tg_arena_t *arena = ud;
    json_t *conf = klen == 8 ? json_loadb(val, vlen, 0, NULL) : NULL;
    if (json_is_object(conf))
        set_owner(arena, tg_be64_get((const uint8_t *)key), conf);
    json_decref(conf);
    return 0;
}

int tg_store_load_owner_configs(tg_store_t *s, tg_arena_t *arena)
{
    return tg_store_each(s, TG_CF_CONFIG, load_owner, arena);
}
