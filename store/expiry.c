/* Card expiry and usage retention jobs (expiry.h). */
#include "store/expiry.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/store-i.h"
#include "store/txn.h"

/* ---- the index: id → position in ids/at (a million accounts with cards are noted at start) ---- */

static size_t home(const tg_store_t *s, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 17) & s->expiry.mask;
}

/* Index entry of ID (its position + 1 is stored there), or of the empty entry where it would go. */
static size_t probe(const tg_store_t *s, uint64_t id)
{
    size_t e = home(s, id);
    while (s->expiry.index[e] != 0 && s->expiry.ids[s->expiry.index[e] - 1] != id)
        e = (e + 1) & s->expiry.mask;
    return e;
}

static ssize_t find(const tg_store_t *s, uint64_t id)
{
    if (s->expiry.index == NULL)
        return -1;
    uint32_t v = s->expiry.index[probe(s, id)];
    return v ? (ssize_t)v - 1 : -1;
}

/* Empties index entry E and moves later entries of its cluster back (linear-probing deletion). */
static void index_delete(tg_store_t *s, size_t e)
{
    size_t mask = s->expiry.mask;
    s->expiry.index[e] = 0;
    for (size_t j = (e + 1) & mask; s->expiry.index[j] != 0; j = (j + 1) & mask) {
        size_t h = home(s, s->expiry.ids[s->expiry.index[j] - 1]);
        /* the entry at J may move to E when E lies cyclically in [H, J) */
        if (((j - h) & mask) >= ((j - e) & mask)) {
            s->expiry.index[e] = s->expiry.index[j];
            s->expiry.index[j] = 0;
            e = j;
        }
    }
}

/* Rebuilds the index for CAP positions. 0, or -1 out of memory. */
static int index_rebuild(tg_store_t *s, size_t cap)
{
    size_t size = 1;
    while (size < cap * 2)
        size <<= 1;
    uint32_t *index = calloc(size, sizeof(*index));
    if (index == NULL)
        return -1;
    free(s->expiry.index);
    s->expiry.index = index;
    s->expiry.mask = size - 1;
    for (size_t i = 0; i < s->expiry.n; i++)
        s->expiry.index[probe(s, s->expiry.ids[i])] = (uint32_t)(i + 1);
    return 0;
}

void tg_expiry_forget(tg_store_t *s, uint64_t id)
{
    ssize_t i = find(s, id);
    if (i < 0)
        return;
    index_delete(s, probe(s, id));
    s->expiry.n--;
    if ((size_t)i != s->expiry.n) { /* the last one takes its place */
        uint64_t moved = s->expiry.ids[s->expiry.n];
        s->expiry.index[probe(s, moved)] = (uint32_t)(i + 1);
        s->expiry.ids[i] = moved;
        s->expiry.at[i] = s->expiry.at[s->expiry.n];
    }
}

static void set_at(tg_store_t *s, uint64_t id, int64_t at)
{
    ssize_t i = find(s, id);
    if (i >= 0) {
        s->expiry.at[i] = at;
        return;
    }
    if (s->expiry.n == s->expiry.cap) {
        size_t cap = s->expiry.cap ? s->expiry.cap * 2 : 64;
        uint64_t *ids = realloc(s->expiry.ids, cap * sizeof(*ids));
        if (ids == NULL)
            return;
        s->expiry.ids = ids;
        int64_t *at2 = realloc(s->expiry.at, cap * sizeof(*at2));
        if (at2 == NULL)
            return;
        s->expiry.at = at2;
        if (index_rebuild(s, cap) != 0)
            return;
        s->expiry.cap = cap;
    }
    s->expiry.ids[s->expiry.n] = id;
    s->expiry.at[s->expiry.n] = at;
    s->expiry.n++;
    s->expiry.index[probe(s, id)] = (uint32_t)s->expiry.n;
}

void tg_expiry_note(tg_store_t *s, const json_t *rec)
{
    uint64_t id = tg_rec_u64(rec, "ID", 0);
    /* Any card, even a spent-out one, is due for removal once expired. */
    int64_t best = 0;
    size_t i;
    json_t *card;
    json_array_foreach(json_object_get(rec, "CreditBalance"), i, card)
    {
        time_t t;
        if (tg_rfc3339_parse(tg_rec_str(card, "expires_at", ""), &t) == 0 && (best == 0 || (int64_t)t < best))
            best = (int64_t)t;
    }
    if (best == 0)
        tg_expiry_forget(s, id);
    else
        set_at(s, id, best);
}

int tg_expiry_run(tg_store_t *s, tg_arena_t *arena, int64_t now)
{
    int changed_accounts = 0;
    s->stats.expiry_runs++;
    for (size_t i = 0; i < s->expiry.n;) {
        if (s->expiry.at[i] > now) {
            i++;
            continue;
        }
        uint64_t id = s->expiry.ids[i];
        tg_txn_t t;
        tg_txn_init(&t, s, arena);
        t.now = (time_t)now;
        json_t *rec = tg_txn_load(&t, id);
        if (rec == NULL) {
            tg_txn_dispose(&t);
            tg_expiry_forget(s, id); /* deleted meanwhile */
            continue;
        }
        int changed = 0;
        int64_t delta = tg_ledger_expire(t.b, s, rec, (time_t)now, &changed);
        if (!changed) {
            tg_expiry_note(s, rec);
            tg_txn_dispose(&t);
            if (find(s, id) >= 0 && s->expiry.at[find(s, id)] <= now)
                tg_expiry_forget(s, id); /* nothing expirable after all: avoid spinning */
            i = 0;
            continue;
        }
        char *err = NULL;
        if (tg_txn_commit(&t, &err) != 0) {
            tg_error("expiry: account %llu: %s", (unsigned long long)id, err ? err : "write failed");
            free(err);
            tg_txn_dispose(&t);
            return -1;
        }
        if (delta != 0)
            s->stats.expired_cards++;
        tg_info("expiry: account %llu: expired cards written off ($%.9f)", (unsigned long long)id,
                tg_nanos_to_dollars(-delta));
        tg_txn_dispose(&t);
        changed_accounts++;
        i = 0; /* the table changed under us (note/forget): rescan; each account is handled once */
    }
    return changed_accounts;
}

int tg_retention_run(tg_store_t *s, uint32_t days, uint64_t now_ms)
{
    if (days == 0)
        return 0;
    uint64_t span = (uint64_t)days * 86400000ULL;
    if (now_ms <= span)
        return 0;
    uint64_t cutoff = now_ms - span;
    uint8_t lo[8], hi[8];
    tg_be64_put(lo, 0);
    tg_be64_put(hi, cutoff);
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range_cf(b, s->cf[TG_CF_USAGE], (const char *)lo, 8, (const char *)hi, 8);
    tg_store_meta_put(b, s, TG_META_USAGE_PRUNED_BEFORE, cutoff);
    char *err = NULL;
    int rc = tg_store_commit(s, b, &err);
    rocksdb_writebatch_destroy(b);
    if (rc != 0) {
        tg_error("retention: deleting usage rows before %llu: %s", (unsigned long long)cutoff, err ? err : "?");
        free(err);
        return -1;
    }
    s->stats.retention_runs++;
    s->stats.retention_deleted_before_ms = cutoff;
    return 0;
}
