/* One bill per Assistants run: the persister's markers (run_once.h). */
#include "store/run_once.h"

#include <string.h>

#include "common/log.h"
#include "store/store-i.h"

int tg_run_once(tg_store_t *s, tg_usage_t *u, const uint8_t **raw, size_t *len, uint8_t *buf, size_t cap)
{
    uint8_t key[sizeof(TG_RUN_MARKER_PREFIX) - 1 + TG_RUN_ID_MAX];
    size_t plen = sizeof(TG_RUN_MARKER_PREFIX) - 1, idlen = strnlen(u->run_id, sizeof(u->run_id));
    memcpy(key, TG_RUN_MARKER_PREFIX, plen);
    memcpy(key + plen, u->run_id, idlen);
    size_t klen = plen + idlen;
    int seen = tg_foldmap_find(&s->fold_runs, key, klen) != NULL;
    if (!seen) {
        size_t vlen = 0;
        char *err = NULL;
        char *v = tg_store_get(s, TG_CF_META, key, klen, &vlen, &err);
        if (err) {
            tg_error("drain: looking up the run %s: %s", u->run_id, err);
            rocksdb_free(err);
            return -1;
        }
        seen = v != NULL;
        rocksdb_free(v);
    }
    tg_rollup_t none = {0};
    if (!seen) { /* the first bill of this run: its marker goes with the record */
        uint8_t acct[8];
        tg_be64_put(acct, u->account_id);
        rocksdb_writebatch_put_cf(s->batch, s->cf[TG_CF_META], (const char *)key, klen, (const char *)acct, 8);
        return tg_foldmap_add(&s->fold_runs, key, klen, &none) == 0 ? 0 : -1;
    }
    tg_rollup_t cost = {0, 0, 0, 0, u->cost_nanos}; /* the worker added it to `spent`: it leaves from there only */
    uint8_t akey[8];
    tg_be64_put(akey, u->account_id);
    if (u->cost_nanos != 0 && tg_foldmap_add(&s->fold_dups, akey, 8, &cost) != 0)
        return -1;
    u->prompt_tokens = u->completion_tokens = u->cached_tokens = 0;
    u->cost_nanos = 0;
    u->flags |= TG_USAGE_RUN_REPEAT;
    int n = tg_usage_encode(u, buf, cap);
    if (n < 0)
        return -1;
    *raw = buf;
    *len = (size_t)n;
    tg_debug("drain: run %s was billed already; request %s is stored unbilled", u->run_id, u->request_id);
    return 0;
}
