/* The drain: usage records from the ring into RocksDB, exactly once.
 *
 * A batch reads records at the ring's tail (tg_ring_peek leaves them in place), folds them in
 * memory (one roll-up delta per account, day and model; one counter delta per account) and
 * commits a single synced WriteBatch holding: every raw record (usage CF), the roll-up deltas
 * (merge operands, rollup_merge.c), the updated account records (rewritten on their stored text,
 * acct_spend.h) with one `spend` ledger entry each, and meta ring_cursor = the
 * ring position after the batch. Only after the commit does it release the records from the ring
 * and move their cost out of the accounts' `spent` (workers add to `spent` when they settle a
 * request; once the cost is in the database it becomes part of the published balance instead).
 *
 * Crash between commit and release: the records are still in the ring, below the stored cursor.
 * The next persister's first drain finds tail < cursor and, instead of storing them again,
 * releases them and applies their `spent` move then: exactly once, with no per-record lookup.
 * The cursor is tied to the arena it was taken in (meta ring_arena = the arena's created_ms), so a
 * recreated arena, whose positions restart at 0, is never mistaken for a lagging one.
 *
 * Arena order after a commit: release the ring first, then for each account subtract the cost
 * from `balance` (root's is unlimited and stays) and then from `spent`. A kill -9 inside those few
 * instructions leaves an account's available credit too low by at most its share of one batch,
 * never too high: the persister errs towards refusing, not towards over-spending.
 *
 * Stuck slots: a producer that died between claiming a slot and publishing it blocks the tail.
 * tg_ring_peek reports it as STUCK; the drain skips it (tg_ring_skip) only once it has stayed
 * STUCK at the tail for stuck_timeout_ms of the persister's own monotonic clock, and logs it.
 * PENDING (a live producer mid-write) just ends the batch. A record that does not decode is
 * logged and consumed, so it can never wedge the ring.
 *
 * Orphans (shm/flight.h): a record the reaper pushed for a request whose worker died in flight.
 * The worker may have pushed the real record before it died (or a reaper that died may have
 * pushed the same orphan), always earlier in the ring and under the same usage key. So an orphan
 * is stored only when no record has its key: one point lookup in the usage CF (earlier batches)
 * and one in this batch's orphan keys; an orphan never joins a batch that already holds another
 * kind of record (the batch ends before it; tg_store_drain starts the next one at once), so an
 * earlier record of the same batch needs no lookup. A skipped orphan's cost still leaves `spent` (the reaper added it there), never the
 * balance. On resume every record below the cursor is released from `spent`, stored or not.
 *
 * Assistants runs: a record naming a run already billed is stored with no tokens and no cost, its
 * cost leaving `spent` only, like a skipped orphan (store/run_once.h). */
#include "store/drain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "shm/ring.h"
#include "shm/usage.h"
#include "store/account_rec.h"
#include "store/acct_spend.h"
#include "store/ledger.h"
#include "store/record.h"
#include "store/run_once.h"
#include "store/store-i.h"

/* Sizes the per-batch scratch for CAP records and empties it. */
static int scratch_reset(tg_store_t *s, size_t cap)
{
    if (cap > UINT32_MAX / 4)
        cap = UINT32_MAX / 4;
    if (s->fold_cap < cap) {
        tg_foldmap_dispose(&s->fold_rollups);
        tg_foldmap_dispose(&s->fold_accounts);
        tg_foldmap_dispose(&s->fold_orphans);
        tg_foldmap_dispose(&s->fold_dups);
        tg_foldmap_dispose(&s->fold_runs);
        s->fold_cap = 0;
        if (tg_foldmap_init(&s->fold_rollups, (uint32_t)cap) != 0 || tg_foldmap_init(&s->fold_accounts, (uint32_t)cap) != 0 ||
            tg_foldmap_init(&s->fold_orphans, (uint32_t)cap) != 0 || tg_foldmap_init(&s->fold_dups, (uint32_t)cap) != 0 ||
            tg_foldmap_init(&s->fold_runs, (uint32_t)cap) != 0) {
            tg_error("drain: out of memory for a batch of %zu records", cap);
            return -1;
        }
        s->fold_cap = (uint32_t)cap;
    }
    tg_foldmap_clear(&s->fold_rollups);
    tg_foldmap_clear(&s->fold_accounts);
    tg_foldmap_clear(&s->fold_orphans);
    tg_foldmap_clear(&s->fold_dups);
    tg_foldmap_clear(&s->fold_runs);
    s->batch_plain = 0;
    s->batch_cut = 0;
    s->batch_read_failed = 0;
    if (s->batch == NULL)
        s->batch = rocksdb_writebatch_create();
    else
        rocksdb_writebatch_clear(s->batch);
    return 0;
}

static void log_bad_record(tg_store_t *s, uint64_t pos, size_t len)
{
    uint64_t n = ++s->bad_records;
    /* Every one of the first ten, then at 100, 1000, ...: a buggy producer cannot flood the log. */
    int loud = n <= 10;
    for (uint64_t p = 100; !loud && p <= n; p *= 10)
        loud = p == n;
    if (loud)
        tg_warn("drain: ring record at position %llu (%zu bytes) is not a usage record; skipped (%llu so far)",
                (unsigned long long)pos, len, (unsigned long long)n);
}

/* Folds one decoded record; when STORE_RAW, also adds its raw bytes to the batch. */
static void fold_record(tg_store_t *s, const tg_usage_t *u, const uint8_t *raw, size_t len, int store_raw)
{
    if (store_raw) {
        uint8_t key[TG_USAGE_KEY_MAX];
        size_t klen = tg_usage_key(key, u->ts_ms, u->request_id, strlen(u->request_id));
        rocksdb_writebatch_put_cf(s->batch, s->cf[TG_CF_USAGE], (const char *)key, klen, (const char *)raw, len);
    }
    tg_rollup_t d = {1, u->prompt_tokens, u->completion_tokens, u->cached_tokens, u->cost_nanos};
    uint8_t rkey[TG_ROLLUP_KEY_MAX], akey[8];
    size_t rlen = tg_rollup_key(rkey, u->account_id, tg_day_of(&s->day, u->ts_ms), u->model, strlen(u->model));
    tg_be64_put(akey, u->account_id);
    /* Both maps hold at least as many entries as the batch has records, so neither can fill up. */
    tg_foldmap_add(&s->fold_rollups, rkey, rlen, &d);
    tg_foldmap_add(&s->fold_accounts, akey, 8, &d);
}

/* An orphan record U about to be stored: 1 when a record with its key is already stored or in
 * this batch (it is then counted as a duplicate), 0 when it is new (its key is noted), -1 when
 * the lookup failed. */
static int orphan_duplicate(tg_store_t *s, const tg_usage_t *u)
{
    uint8_t key[TG_USAGE_KEY_MAX];
    size_t klen = tg_usage_key(key, u->ts_ms, u->request_id, strlen(u->request_id));
    int dup = tg_foldmap_find(&s->fold_orphans, key, klen) != NULL;
    if (!dup) {
        size_t vlen = 0;
        char *err = NULL;
        char *v = tg_store_get(s, TG_CF_USAGE, key, klen, &vlen, &err);
        if (err) {
            tg_error("drain: looking up the usage record %s: %s", u->request_id, err);
            rocksdb_free(err);
            return -1;
        }
        dup = v != NULL;
        rocksdb_free(v);
    }
    tg_rollup_t d = {1, 0, 0, 0, u->cost_nanos};
    if (dup) {
        uint8_t akey[8];
        tg_be64_put(akey, u->account_id);
        tg_foldmap_add(&s->fold_dups, akey, 8, &d);
        s->stats.orphans_duplicate++;
        tg_info("drain: request %s already has its usage record; the estimate of its dead worker is dropped",
                u->request_id);
    } else {
        tg_foldmap_add(&s->fold_orphans, key, klen, &d);
        s->stats.orphans_stored++;
    }
    return dup;
}

/* Reads ready records from POS on, up to position LIMIT and MAX records, into the scratch.
 * Returns the first position not consumed; *STATUS is the ring status found there
 * (TG_RING_OK when a limit stopped it). STORING = a real batch (raw rows written, bad records logged). */
static uint64_t collect(tg_store_t *s, tg_arena_t *a, uint64_t pos, uint64_t limit, size_t max, int storing, int *status)
{
    *status = TG_RING_OK;
    for (size_t n = 0; pos < limit && n < max; n++, pos++) {
        const uint8_t *data;
        size_t len;
        int rc = tg_ring_peek(a, pos, &data, &len);
        if (rc != TG_RING_OK) {
            *status = rc;
            break;
        }
        tg_usage_t u;
        if (tg_usage_decode(data, len, &u) != 0) {
            if (storing)
                log_bad_record(s, pos, len);
            continue;
        }
        if (storing && (u.flags & TG_USAGE_ORPHAN)) {
            if (s->batch_plain) {
                s->batch_cut = 1;
                break; /* the next batch starts with it: its twin, if any, is stored by then */
            }
            int dup = orphan_duplicate(s, &u);
            if (dup < 0) {
                s->batch_read_failed = 1;
                break;
            }
            if (dup)
                continue;
        } else if (storing) {
            s->batch_plain = 1;
        }
        uint8_t unbilled[TG_RING_PAYLOAD + 64]; /* a run billed already: the record re-encoded with no cost */
        if (storing && u.run_id[0] && tg_run_once(s, &u, &data, &len, unbilled, sizeof(unbilled)) != 0) {
            s->batch_read_failed = 1;
            break;
        }
        fold_record(s, &u, data, len, storing);
        if (storing)
            tg_stats_note_record(&s->stats, &u);
    }
    return pos;
}

/* The slot at the tail is STUCK: 1 when it has been for long enough and was skipped. */
static int skip_if_stuck_long(tg_store_t *s, tg_arena_t *a, uint64_t pos)
{
    uint64_t now = tg_mono_ns();
    if (s->stuck_pos != pos) {
        s->stuck_pos = pos;
        s->stuck_since_ns = now;
    }
    uint64_t waited_ms = (now - s->stuck_since_ns) / 1000000u;
    if (waited_ms < s->stuck_timeout_ms)
        return 0;
    s->stuck_pos = UINT64_MAX;
    if (tg_ring_skip(a, pos) != 0)
        return 0; /* its producer published after all: read it normally */
    tg_warn("drain: ring position %llu was claimed by a process that died before writing its record; "
            "skipped after %llu ms",
            (unsigned long long)pos, (unsigned long long)waited_ms);
    return 1;
}

/* Adds the folded roll-ups to the stored rows in the batch: merge operands, summed into the rows by
 * RocksDB (rollup_merge.c), so no row is read here. */
static int batch_rollups(tg_store_t *s)
{
    for (uint32_t i = 0; i < s->fold_rollups.n; i++) {
        tg_fold_entry_t *e = &s->fold_rollups.entries[i];
        uint8_t buf[128];
        int n = tg_rollup_encode(&e->sum, buf, sizeof(buf));
        if (n < 0)
            return -1;
        rocksdb_writebatch_merge_cf(s->batch, s->cf[TG_CF_ROLLUPS], (const char *)e->key, e->key_len, (const char *)buf, (size_t)n);
    }
    return 0;
}

/* The batch's cost leaves the account's cards (earliest expiry first; what they do not cover
 * grows the Overdraft) with one `spend` ledger entry, in the same WriteBatch as the usage rows. */
static int batch_spend(tg_store_t *s, json_t *rec, const tg_rollup_t *sum)
{
    if (sum->cost_nanos <= 0)
        return 0;
    uint64_t now_ms = tg_now_ms();
    json_t *breakdown = json_array();
    int rc = tg_cards_take(rec, sum->cost_nanos, (time_t)(now_ms / 1000), breakdown);
    uint64_t card = (uint64_t)json_integer_value(json_array_get(json_array_get(breakdown, 0), 0));
    json_decref(breakdown);
    char ref[48];
    snprintf(ref, sizeof(ref), "usage: %llu request(s)", (unsigned long long)sum->requests);
    if (rc == 0)
        rc = tg_ledger_append(s->batch, s, rec, "spend", -sum->cost_nanos, card, 0, ref, now_ms);
    return rc;
}

/* The tree path for one account: load, change, store (what acct_spend.c does on the text). */
static int account_by_tree(tg_store_t *s, uint64_t id, const tg_rollup_t *sum)
{
    json_t *rec;
    int have = tg_store_json_load(s, TG_CF_ACCOUNTS, id, &rec);
    if (have == TG_LOAD_ERROR)
        return -1;            /* the batch fails and is retried: counters are never silently lost */
    if (have != TG_LOAD_OK) { /* deleted account, or a damaged record (logged): usage and roll-ups still count */
        if (have == TG_LOAD_ABSENT)
            tg_debug("drain: usage for account %llu, which is not in the database", (unsigned long long)id);
        return 0;
    }
    int rc = -1;
    if (tg_rec_add_i64(rec, "CreditUsed", sum->cost_nanos) == 0 && tg_rec_add_i64(rec, "Requests", (int64_t)sum->requests) == 0 &&
        batch_spend(s, rec, sum) == 0)
        rc = tg_store_json_put(s->batch, s, TG_CF_ACCOUNTS, id, rec);
    json_decref(rec);
    return rc;
}

/* One account's counters, cards and `spend` entry, rewritten on its stored text (acct_spend.h);
 * records that path leaves alone go through the tree path. */
static int account_update(tg_store_t *s, uint64_t id, const tg_rollup_t *sum)
{
    uint8_t key[8];
    tg_be64_put(key, id);
    size_t len = 0;
    char *err = NULL;
    char *v = tg_store_get(s, TG_CF_ACCOUNTS, key, 8, &len, &err);
    if (err) {
        tg_error("store: reading %s/%llu: %s", tg_cf_name(TG_CF_ACCOUNTS), (unsigned long long)id, err);
        rocksdb_free(err);
        return -1;
    }
    if (v == NULL)
        return account_by_tree(s, id, sum); /* absent: the tree path says so */
    tg_acct_spend_t out;
    int rc = tg_acct_spend_text(v, len, id, sum->cost_nanos, sum->requests, tg_now_ms(), &out);
    rocksdb_free(v);
    if (rc > 0)
        return account_by_tree(s, id, sum);
    if (rc < 0)
        return -1;
    rocksdb_writebatch_put_cf(s->batch, s->cf[TG_CF_ACCOUNTS], (const char *)key, 8, out.rec, out.rec_len);
    if (out.entry) {
        uint8_t lkey[TG_LEDGER_KEY_LEN];
        tg_ledger_key(lkey, id, out.seq);
        rocksdb_writebatch_put_cf(s->batch, s->cf[TG_CF_LEDGER], (const char *)lkey, sizeof(lkey), out.entry, out.entry_len);
    }
    tg_acct_spend_free(&out);
    return 0;
}

/* Adds the folded spend and request counts to the account records in the batch. */
static int batch_accounts(tg_store_t *s)
{
    for (uint32_t i = 0; i < s->fold_accounts.n; i++) {
        tg_fold_entry_t *e = &s->fold_accounts.entries[i];
        if (account_update(s, tg_be64_get(e->key), &e->sum) != 0)
            return -1;
    }
    return 0;
}

/* Moves each folded account's cost from `spent` into its published balance; a skipped orphan's
 * cost only leaves `spent`. */
static void apply_to_arena(tg_store_t *s, tg_arena_t *a)
{
    for (uint32_t i = 0; i < s->fold_dups.n; i++) {
        const tg_fold_entry_t *e = &s->fold_dups.entries[i];
        uint64_t id = tg_be64_get(e->key);
        int64_t slot = s->slots_ready ? tg_slotmap_find(&s->acct_slots, id) : tg_account_find_id(a, id);
        if (slot >= 0)
            atomic_fetch_sub(&a->accounts[slot].spent, e->sum.cost_nanos);
    }
    for (uint32_t i = 0; i < s->fold_accounts.n; i++) {
        const tg_fold_entry_t *e = &s->fold_accounts.entries[i];
        uint64_t id = tg_be64_get(e->key);
        int64_t slot = s->slots_ready ? tg_slotmap_find(&s->acct_slots, id) : tg_account_find_id(a, id);
        if (slot < 0)
            continue;
        tg_account_t *acct = &a->accounts[slot];
        if (id != TG_ROOT_ID)
            atomic_fetch_sub(&acct->balance, e->sum.cost_nanos);
        atomic_fetch_sub(&acct->spent, e->sum.cost_nanos);
    }
}

/* Resume only: the batch is in the database, so the balance published at start (re-derived from
 * the records) already holds its cost; only the workers' `spent` still counts it. */
static void release_spent(tg_store_t *s, tg_arena_t *a)
{
    for (uint32_t i = 0; i < s->fold_accounts.n; i++) {
        const tg_fold_entry_t *e = &s->fold_accounts.entries[i];
        uint64_t id = tg_be64_get(e->key);
        int64_t slot = s->slots_ready ? tg_slotmap_find(&s->acct_slots, id) : tg_account_find_id(a, id);
        if (slot >= 0)
            atomic_fetch_sub(&a->accounts[slot].spent, e->sum.cost_nanos);
    }
}

/* First drain after open: finish a batch the previous persister committed but did not release. */
static int resume(tg_store_t *s, tg_arena_t *a)
{
    uint64_t cursor = 0, arena_id = 0;
    int have_cursor = tg_store_meta_get(s, TG_META_RING_CURSOR, &cursor);
    int have_arena = tg_store_meta_get(s, TG_META_RING_ARENA, &arena_id);
    if (have_cursor < 0 || have_arena < 0)
        return -1;
    if (have_cursor == 0)
        return 0;
    if (have_arena == 0 || arena_id != a->hdr->created_ms) {
        tg_info("drain: the arena is new since the last stored batch; its ring starts afresh");
        return 0;
    }
    uint64_t tail = tg_ring_tail(a), head = atomic_load(&a->hdr->ring_head);
    if (cursor <= tail)
        return 0;
    if (cursor > head) {
        tg_warn("drain: the stored ring cursor %llu is ahead of the ring head %llu; ignored", (unsigned long long)cursor,
                (unsigned long long)head);
        return 0;
    }
    if (scratch_reset(s, (size_t)(cursor - tail)) != 0)
        return -1;
    int status;
    uint64_t end = collect(s, a, tail, cursor, (size_t)(cursor - tail), 0, &status);
    if (end != cursor)
        tg_error("drain: records %llu..%llu were stored but are no longer readable in the ring; releasing them "
                 "without adjusting their accounts' spent credit",
                 (unsigned long long)end, (unsigned long long)cursor);
    tg_ring_release(a, cursor);
    release_spent(s, a);
    tg_info("drain: released %llu record(s) that the previous persister had stored but not released",
            (unsigned long long)(cursor - tail));
    return 0;
}

int tg_drain_commit(tg_store_t *s, tg_arena_t *a, size_t max_records, size_t *drained, uint64_t *end)
{
    *drained = 0;
    *end = tg_ring_tail(a);
    if (max_records == 0)
        return 0;
    if (scratch_reset(s, max_records) != 0)
        return -1;
    uint64_t start = tg_ring_tail(a), pos = start;
    tg_store_stats_t before = s->stats; /* restored when the batch fails: it will be counted when retried */
    for (;;) {
        int status;
        pos = collect(s, a, pos, UINT64_MAX, max_records - (size_t)(pos - start), 1, &status);
        if (status == TG_RING_STUCK && pos == start && skip_if_stuck_long(s, a, pos)) {
            start = pos = pos + 1; /* skipped: the tail moved past it */
            continue;
        }
        if (status != TG_RING_STUCK || pos != s->stuck_pos)
            s->stuck_pos = UINT64_MAX;
        break;
    }
    *end = pos;
    if (s->batch_read_failed) { /* retried from the same tail on the next tick */
        s->stats = before;
        s->stats.batch_failures++;
        *end = start;
        return -1;
    }
    if (pos == start)
        return 0;
    tg_store_meta_put(s->batch, s, TG_META_RING_CURSOR, pos);
    tg_store_meta_put(s->batch, s, TG_META_RING_ARENA, a->hdr->created_ms);
    char *err = NULL;
    if (batch_rollups(s) != 0 || batch_accounts(s) != 0 || tg_store_commit(s, s->batch, &err) != 0) {
        uint64_t failures = s->stats.batch_failures + 1;
        s->stats = before;
        s->stats.batch_failures = failures;
        uint64_t n = ++s->write_failures;
        if (n == 1 || n % 1000 == 0)
            tg_error("drain: writing a batch of %llu record(s) failed (%llu in a row): %s; they stay in the ring",
                     (unsigned long long)(pos - start), (unsigned long long)n, err ? err : "see above");
        free(err);
        *end = start;
        return -1;
    }
    if (s->write_failures) {
        tg_info("drain: writing works again after %llu failure(s)", (unsigned long long)s->write_failures);
        s->write_failures = 0;
    }
    *drained = (size_t)(pos - start);
    tg_stats_note_batch(&s->stats, *drained, tg_now_ms());
    return 0;
}

void tg_drain_finish(tg_store_t *s, tg_arena_t *a, uint64_t end)
{
    tg_ring_release(a, end);
    apply_to_arena(s, a);
}

int tg_store_drain(tg_store_t *s, tg_arena_t *a, size_t max_records, size_t *drained)
{
    *drained = 0;
    if (!s->resumed) {
        if (resume(s, a) != 0)
            return -1;
        s->resumed = 1;
    }
    /* a batch cut short before an orphan is followed at once by the next one (up to MAX_RECORDS) */
    do {
        uint64_t end;
        size_t n = 0;
        if (tg_drain_commit(s, a, max_records - *drained, &n, &end) != 0)
            return *drained ? 0 : -1;
        if (n == 0)
            break;
        tg_drain_finish(s, a, end);
        *drained += n;
    } while (s->batch_cut && *drained < max_records);
    return 0;
}
