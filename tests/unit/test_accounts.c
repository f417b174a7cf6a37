/* tests/unit/test_accounts.c: unit tests for shm/accounts.c (seqlock-protected account slots and
 * the SHA-256 key index), including a reader racing a publisher in another process. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena_fixture.h"

#include "common/clock.h"
#include "common/keyhash.h"
#include "shm/accounts.h"
#include "shm/arena.h"

typedef tg_test_arena_t fixture_t; /* tests/unit/arena_fixture.h */

static int open_arena(void **state, uint32_t max_accounts)
{
    return tg_test_arena_setup(state, "accounts", (tg_arena_sizes_t){max_accounts, 4, 16});
}

static int setup_small(void **state)
{
    return open_arena(state, 64);
}

static int setup_tiny(void **state)
{
    return open_arena(state, 4); /* 8 index entries: collisions are easy to make */
}

static int setup_large(void **state)
{
    return open_arena(state, 16384);
}

static void key_hash_of(const char *key, uint8_t out[32])
{
    tg_key_hash(key, strlen(key), out);
}

/* Settings whose every field derives from KEY_HASH and ID, so a torn copy is recognisable. */
static void derived_settings(tg_account_settings_t *st, const uint8_t hash[32], uint64_t id)
{
    memset(st, 0, sizeof(*st));
    memcpy(st->key_hash, hash, 32);
    st->id = id;
    st->parent_id = id + 1000;
    st->owner_id = id + 2000;
    st->flags = TG_ACCT_ENABLED | ((id & 1) ? TG_ACCT_ROOT : TG_ACCT_OWNER);
    st->level = (int32_t)(id % 7);
    st->depth = (uint32_t)(id % 5);
    char hex[65];
    tg_hex(hash, 32, hex);
    memcpy(st->name, hex, TG_NAME_MAX - 1); /* 63 hex digits of the hash */
    st->name[TG_NAME_MAX - 1] = '\0';
}

/* 1 when OUT is exactly what derived_settings(hash, id) wrote (plus USED). */
static int settings_consistent(const tg_account_settings_t *out, const uint8_t hash[32], uint64_t id)
{
    tg_account_settings_t want;
    derived_settings(&want, hash, id);
    return out->id == want.id && out->parent_id == want.parent_id && out->owner_id == want.owner_id &&
           out->flags == (want.flags | TG_ACCT_USED) && out->level == want.level && out->depth == want.depth &&
           memcmp(out->key_hash, want.key_hash, 32) == 0 && strcmp(out->name, want.name) == 0;
}

/* A hash whose index start position is POS (the index hashes the first 8 bytes). */
static void hash_at(uint8_t out[32], uint32_t pos, uint8_t tag)
{
    memset(out, tag, 32);
    uint64_t start = pos;
    memcpy(out, &start, sizeof(start));
}

/* The index word of HASH in SLOT: the digest's bytes 8..11 as the tag, slot + 1 (arena-t.h). */
static uint64_t word_of(const uint8_t hash[32], uint32_t slot)
{
    uint32_t tag;
    memcpy(&tag, hash + 8, sizeof(tag));
    return (uint64_t)tag << 32 | (slot + 1);
}

/* 1 when index entry POS maps HASH to SLOT. */
static int entry_is(const tg_arena_t *a, uint32_t pos, const uint8_t hash[32], uint32_t slot)
{
    return atomic_load(&a->index[pos].word) == word_of(hash, slot);
}

/* Live entries carrying HASH's tag (the keys of these tests have distinct tags). */
static uint32_t live_entries_for(const tg_arena_t *a, const uint8_t hash[32])
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->hdr->index_slots; i++) {
        uint64_t w = atomic_load(&a->index[i].word);
        uint32_t s = (uint32_t)w;
        if (s != TG_INDEX_EMPTY && s != TG_INDEX_DELETED && w >> 32 == word_of(hash, 0) >> 32)
            n++;
    }
    return n;
}

static void test_publish_lookup_read(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t h[32];
    key_hash_of("sk-Xvs-alice", h);
    tg_account_settings_t st, out;
    derived_settings(&st, h, 41);
    assert_int_equal(tg_account_lookup(a, h), -1);
    assert_int_equal(tg_account_read(a, 7, &out), -1);

    assert_int_equal(tg_account_publish(a, 7, &st), 0);
    assert_int_equal(tg_account_lookup(a, h), 7);
    memset(&out, 0xee, sizeof(out));
    assert_int_equal(tg_account_read(a, 7, &out), 0);
    assert_true(settings_consistent(&out, h, 41));
    assert_int_equal(tg_account_find_id(a, 41), 7);
    assert_int_equal(tg_account_find_id(a, 42), -1);
    assert_int_equal(atomic_load(&a->hdr->n_accounts_hw), 8);
    assert_int_equal(live_entries_for(a, h), 1);

    /* counters are not settings: a re-publish leaves them alone */
    atomic_store(&a->accounts[7].balance, 500);
    atomic_store(&a->accounts[7].spent, 20);
    atomic_store(&a->accounts[7].requests, 3);
    derived_settings(&st, h, 41);
    snprintf(st.name, sizeof(st.name), "renamed");
    st.flags |= TG_ACCT_SUSPENDED;
    assert_int_equal(tg_account_publish(a, 7, &st), 0);
    assert_int_equal(tg_account_read(a, 7, &out), 0);
    assert_string_equal(out.name, "renamed");
    assert_true(out.flags & TG_ACCT_SUSPENDED);
    assert_true(atomic_load(&a->accounts[7].balance) == 500);
    assert_true(atomic_load(&a->accounts[7].spent) == 20);
    assert_true(atomic_load(&a->accounts[7].requests) == 3);
    assert_int_equal(tg_account_lookup(a, h), 7);
    assert_int_equal(live_entries_for(a, h), 1);

    /* a name without a terminator is cut to TG_NAME_MAX - 1 */
    memset(st.name, 'n', sizeof(st.name));
    assert_int_equal(tg_account_publish(a, 7, &st), 0);
    assert_int_equal(tg_account_read(a, 7, &out), 0);
    assert_int_equal(strlen(out.name), TG_NAME_MAX - 1);

    /* high-water mark only grows */
    uint8_t h2[32];
    key_hash_of("sk-Xvs-bob", h2);
    derived_settings(&st, h2, 42);
    assert_int_equal(tg_account_publish(a, 2, &st), 0);
    assert_int_equal(atomic_load(&a->hdr->n_accounts_hw), 8);
    assert_int_equal(tg_account_lookup(a, h2), 2);
    assert_int_equal(tg_account_lookup(a, h), 7);

    /* out of range */
    assert_int_equal(tg_account_publish(a, 64, &st), -1);
    assert_int_equal(tg_account_publish(a, UINT32_MAX, &st), -1);
    assert_int_equal(tg_account_read(a, 64, &out), -1);
    assert_int_equal(tg_account_read(a, UINT32_MAX, &out), -1);
}

static void test_key_rotation(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t k1[32], k2[32], k3[32];
    key_hash_of("sk-Xvs-old", k1);
    key_hash_of("sk-Xvs-new", k2);
    key_hash_of("sk-Xvs-newer", k3);
    tg_account_settings_t st, out;
    derived_settings(&st, k1, 5);
    assert_int_equal(tg_account_publish(a, 3, &st), 0);
    assert_int_equal(tg_account_lookup(a, k1), 3);

    derived_settings(&st, k2, 5);
    assert_int_equal(tg_account_publish(a, 3, &st), 0);
    assert_int_equal(tg_account_lookup(a, k1), -1);
    assert_int_equal(tg_account_lookup(a, k2), 3);
    assert_int_equal(tg_account_read(a, 3, &out), 0);
    assert_memory_equal(out.key_hash, k2, 32);
    assert_int_equal(live_entries_for(a, k1), 0);
    assert_int_equal(live_entries_for(a, k2), 1);

    derived_settings(&st, k3, 5);
    assert_int_equal(tg_account_publish(a, 3, &st), 0);
    assert_int_equal(tg_account_lookup(a, k2), -1);
    assert_int_equal(tg_account_lookup(a, k3), 3);

    /* back to the first key */
    derived_settings(&st, k1, 5);
    assert_int_equal(tg_account_publish(a, 3, &st), 0);
    assert_int_equal(tg_account_lookup(a, k1), 3);
    assert_int_equal(tg_account_lookup(a, k2), -1);
    assert_int_equal(tg_account_lookup(a, k3), -1);
    assert_int_equal(live_entries_for(a, k1), 1);
    assert_int_equal(live_entries_for(a, k3), 0);
}

/* A key moved from one slot to another: found at the new slot only, never at the old one. */
static void test_key_moved_between_slots(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t k[32], other[32];
    key_hash_of("sk-Xvs-moving", k);
    key_hash_of("sk-Xvs-other", other);
    tg_account_settings_t st;
    derived_settings(&st, k, 1);
    assert_int_equal(tg_account_publish(a, 1, &st), 0);
    derived_settings(&st, k, 2);
    assert_int_equal(tg_account_publish(a, 2, &st), 0);
    assert_int_equal(tg_account_lookup(a, k), 2);
    assert_int_equal(live_entries_for(a, k), 1);
    /* slot 1 gets a new key; slot 2 keeps k */
    derived_settings(&st, other, 1);
    assert_int_equal(tg_account_publish(a, 1, &st), 0);
    assert_int_equal(tg_account_lookup(a, k), 2);
    assert_int_equal(tg_account_lookup(a, other), 1);
    /* unpublishing slot 1 does not drop slot 2's key */
    tg_account_unpublish(a, 1);
    assert_int_equal(tg_account_lookup(a, k), 2);
    assert_int_equal(tg_account_lookup(a, other), -1);
}

static void test_unpublish(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t k[32], k2[32];
    key_hash_of("sk-Xvs-gone", k);
    key_hash_of("sk-Xvs-stays", k2);
    tg_account_settings_t st, out;
    derived_settings(&st, k, 8);
    assert_int_equal(tg_account_publish(a, 4, &st), 0);
    derived_settings(&st, k2, 9);
    assert_int_equal(tg_account_publish(a, 5, &st), 0);

    tg_account_unpublish(a, 4);
    assert_int_equal(tg_account_lookup(a, k), -1);
    assert_int_equal(tg_account_read(a, 4, &out), -1);
    assert_int_equal(tg_account_find_id(a, 8), -1);
    assert_int_equal(live_entries_for(a, k), 0);
    assert_int_equal(tg_account_lookup(a, k2), 5);
    assert_int_equal(tg_account_find_id(a, 9), 5);

    tg_account_unpublish(a, 4); /* twice: no-op */
    tg_account_unpublish(a, 6); /* never used: no-op */
    assert_int_equal(tg_account_lookup(a, k2), 5);

    /* the slot is reusable, with the old key or another */
    derived_settings(&st, k, 8);
    assert_int_equal(tg_account_publish(a, 4, &st), 0);
    assert_int_equal(tg_account_lookup(a, k), 4);
    assert_int_equal(tg_account_read(a, 4, &out), 0);
    assert_true(settings_consistent(&out, k, 8));
    assert_int_equal(live_entries_for(a, k), 1);
}

/* 10,000 accounts in an arena of 16,384: every key found at its slot, unknown keys not found,
 * then every key rotated, then half removed. */
static void test_many_accounts(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    enum { N = 10000 };
    uint8_t(*hashes)[32] = malloc((size_t)N * 32);
    assert_non_null(hashes);
    char key[64];
    tg_account_settings_t st;
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sk-Xvs-account-%u", i);
        key_hash_of(key, hashes[i]);
        derived_settings(&st, hashes[i], 100000 + i);
        uint32_t slot = (i * 7919u) % 16384u; /* scattered slots */
        if (tg_account_publish(a, slot, &st) != 0)
            fail_msg("publish %u failed", i);
    }
    for (uint32_t i = 0; i < N; i++) {
        int64_t got = tg_account_lookup(a, hashes[i]);
        if (got != (int64_t)((i * 7919u) % 16384u))
            fail_msg("key %u: lookup %lld", i, (long long)got);
    }
    uint8_t h[32];
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sk-Xvs-unknown-%u", i);
        key_hash_of(key, h);
        if (tg_account_lookup(a, h) != -1)
            fail_msg("unknown key %u found", i);
    }
    /* rotate every key: the old ones vanish, leaving tombstones that must not break probing */
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sk-Xvs-rotated-%u", i);
        key_hash_of(key, h);
        derived_settings(&st, h, 100000 + i);
        assert_int_equal(tg_account_publish(a, (i * 7919u) % 16384u, &st), 0);
    }
    for (uint32_t i = 0; i < N; i++) {
        if (tg_account_lookup(a, hashes[i]) != -1)
            fail_msg("rotated-out key %u still found", i);
        snprintf(key, sizeof(key), "sk-Xvs-rotated-%u", i);
        key_hash_of(key, h);
        if (tg_account_lookup(a, h) != (int64_t)((i * 7919u) % 16384u))
            fail_msg("rotated key %u not found", i);
    }
    /* remove the even ones */
    for (uint32_t i = 0; i < N; i += 2)
        tg_account_unpublish(a, (i * 7919u) % 16384u);
    for (uint32_t i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "sk-Xvs-rotated-%u", i);
        key_hash_of(key, h);
        int64_t want = (i % 2) ? (int64_t)((i * 7919u) % 16384u) : -1;
        if (tg_account_lookup(a, h) != want)
            fail_msg("after removals, key %u: lookup %lld, want %lld", i, (long long)tg_account_lookup(a, h),
                     (long long)want);
    }
    assert_int_equal(tg_account_find_id(a, 100000 + 9999), (9999u * 7919u) % 16384u);
    assert_int_equal(tg_account_find_id(a, 100000 + 9998), -1);
    free(hashes);
}

/* Entries that collide: deleting one in the middle of a probe chain leaves a tombstone that later
 * lookups step over and a later insert reuses, without duplicating a key. */
static void test_tombstones(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint32_t mask = a->hdr->index_slots - 1;
    assert_int_equal(a->hdr->index_slots, 8);
    uint32_t p = 6; /* chains wrap around the end of the table */
    uint8_t ha[32], hb[32], hc[32], hd[32];
    hash_at(ha, p, 0xa1);
    hash_at(hb, p, 0xb2);
    hash_at(hc, p, 0xc3);
    hash_at(hd, p + 8, 0xd4); /* same start position modulo the table size */
    tg_account_settings_t st, out;
    derived_settings(&st, ha, 1);
    assert_int_equal(tg_account_publish(a, 0, &st), 0);
    derived_settings(&st, hb, 2);
    assert_int_equal(tg_account_publish(a, 1, &st), 0);
    derived_settings(&st, hc, 3);
    assert_int_equal(tg_account_publish(a, 2, &st), 0);
    /* A at p, B at p+1, C at p+2 (wrapped) */
    assert_true(entry_is(a, p, ha, 0));
    assert_true(entry_is(a, (p + 1) & mask, hb, 1));
    assert_true(entry_is(a, (p + 2) & mask, hc, 2));

    /* delete B: C stays reachable across the tombstone */
    tg_account_unpublish(a, 1);
    assert_int_equal((uint32_t)atomic_load(&a->index[(p + 1) & mask].word), TG_INDEX_DELETED);
    assert_int_equal(tg_account_lookup(a, hb), -1);
    assert_int_equal(tg_account_lookup(a, hc), 2);
    assert_int_equal(tg_account_lookup(a, ha), 0);

    /* D collides too and takes B's tombstone */
    derived_settings(&st, hd, 4);
    assert_int_equal(tg_account_publish(a, 1, &st), 0);
    assert_true(entry_is(a, (p + 1) & mask, hd, 1));
    assert_int_equal(tg_account_lookup(a, hd), 1);
    assert_int_equal(tg_account_lookup(a, hc), 2);
    assert_int_equal(tg_account_lookup(a, hb), -1);

    /* delete A (tombstone at p), then move C to slot 3: C is re-pointed where it is, not
     * inserted a second time into A's tombstone */
    tg_account_unpublish(a, 0);
    derived_settings(&st, hc, 3);
    assert_int_equal(tg_account_publish(a, 3, &st), 0);
    assert_int_equal(live_entries_for(a, hc), 1);
    assert_int_equal(tg_account_lookup(a, hc), 3);
    assert_int_equal(tg_account_read(a, 3, &out), 0);
    assert_true(settings_consistent(&out, hc, 3));

    /* C's entry (at p+2) now names slot 3 */
    assert_true(entry_is(a, (p + 2) & mask, hc, 3));
    /* deleting D leaves a tombstone */
    tg_account_unpublish(a, 1);
    assert_int_equal((uint32_t)atomic_load(&a->index[(p + 1) & mask].word), TG_INDEX_DELETED);
    /* D comes back into the first tombstone of its chain, A's old entry at p */
    assert_int_equal((uint32_t)atomic_load(&a->index[p].word), TG_INDEX_DELETED);
    derived_settings(&st, hd, 4);
    assert_int_equal(tg_account_publish(a, 1, &st), 0);
    assert_true(entry_is(a, p, hd, 1));
    assert_int_equal(live_entries_for(a, hd), 1);
    assert_int_equal(tg_account_lookup(a, hd), 1);

    /* churn: many publish/unpublish cycles on a full-ish tiny table stay correct */
    for (int round = 0; round < 200; round++) {
        uint8_t hx[32];
        hash_at(hx, (uint32_t)round, (uint8_t)(round + 1));
        derived_settings(&st, hx, 10 + (uint64_t)round);
        assert_int_equal(tg_account_publish(a, 0, &st), 0);
        assert_int_equal(tg_account_lookup(a, hx), 0);
        assert_int_equal(tg_account_lookup(a, hd), 1);
        assert_int_equal(tg_account_lookup(a, hc), 3);
        if (round % 3 == 0)
            tg_account_unpublish(a, 0);
    }
}

/* Writes slot SLOT's key and flags under its seqlock, leaving the index alone: the state a reader
 * sees while tg_account_publish / tg_account_unpublish are half done (the slot is written before
 * the index is updated on rotation; the index before the slot on removal). */
static void slot_write_only(tg_arena_t *a, uint32_t slot, const uint8_t hash[32], uint32_t flags)
{
    tg_account_t *acct = &a->accounts[slot];
    uint32_t s = atomic_load(&acct->seq);
    atomic_store(&acct->seq, s + 1);
    memcpy(acct->key_hash, hash, 32);
    acct->flags = flags;
    atomic_store(&acct->seq, s + 2);
}

/* The index is only a hint: a lookup confirms against the slot's own key, so a reader racing a key
 * rotation or a removal misses rather than matching the wrong account. */
static void test_lookup_confirms_slot_key(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t ha[32], hb[32], zero[32] = {0};
    key_hash_of("sk-Xvs-confirm-A", ha);
    key_hash_of("sk-Xvs-confirm-B", hb);
    tg_account_settings_t st;
    derived_settings(&st, ha, 1);
    assert_int_equal(tg_account_publish(a, 0, &st), 0);
    assert_int_equal(tg_account_lookup(a, ha), 0);
    uint32_t flags = a->accounts[0].flags;

    /* rotation half done: slot 0 already holds B, the index still says A -> 0 */
    slot_write_only(a, 0, hb, flags);
    assert_int_equal(live_entries_for(a, ha), 1);
    assert_int_equal(tg_account_lookup(a, ha), -1);
    assert_int_equal(tg_account_lookup(a, hb), -1); /* not indexed yet */
    /* completed */
    derived_settings(&st, hb, 1);
    assert_int_equal(tg_account_publish(a, 0, &st), 0);
    assert_int_equal(tg_account_lookup(a, hb), 0);
    assert_int_equal(tg_account_lookup(a, ha), -1);

    /* removal seen from the other side: the slot is cleared but still indexed */
    slot_write_only(a, 0, zero, 0);
    assert_int_equal(live_entries_for(a, hb), 1);
    assert_int_equal(tg_account_lookup(a, hb), -1);
    /* an unused slot keeps its old key bytes but is not USED: no match either */
    slot_write_only(a, 0, hb, 0);
    assert_int_equal(tg_account_lookup(a, hb), -1);
}

/* A lookup of a hash that differs from an indexed one only after the first 8 bytes misses. */
static void test_full_hash_compared(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint8_t h[32], near[32];
    key_hash_of("sk-Xvs-precise", h);
    tg_account_settings_t st;
    derived_settings(&st, h, 1);
    assert_int_equal(tg_account_publish(a, 0, &st), 0);
    for (int i = 0; i < 32; i++) {
        memcpy(near, h, 32);
        near[i] ^= 0x80;
        if (tg_account_lookup(a, near) != -1)
            fail_msg("hash differing in byte %d matched", i);
    }
    assert_int_equal(tg_account_lookup(a, h), 0);
}

/* A child re-publishes slot 0 with keys A and B in turn (both start at the same index entry, so
 * the entries of that chain are rewritten under the reader) while the parent looks up A, B, an unknown key
 * C, and a stable key D whose probe chain passes through that entry. */
static void test_concurrent_reader(void **state)
{
    fixture_t *f = *state;
    tg_arena_t *a = &f->a;
    uint32_t mask = a->hdr->index_slots - 1;
    uint8_t ha[32], hb[32], hc[32], hd[32];
    /* real key digests, chosen to share a start position */
    key_hash_of("sk-Xvs-race-A", ha);
    uint64_t sa;
    memcpy(&sa, ha, 8);
    char key[64];
    int found = 0;
    for (int i = 0; i < 100000 && found < 3; i++) {
        snprintf(key, sizeof(key), "sk-Xvs-race-%d", i);
        uint8_t h[32];
        key_hash_of(key, h);
        uint64_t s;
        memcpy(&s, h, 8);
        if ((s & mask) != (sa & mask) || memcmp(h, ha, 32) == 0)
            continue;
        memcpy(found == 0 ? hb : found == 1 ? hc : hd, h, 32);
        found++;
    }
    assert_int_equal(found, 3);

    tg_account_settings_t st_a, st_b, st_d, out;
    derived_settings(&st_a, ha, 1);
    derived_settings(&st_b, hb, 2);
    derived_settings(&st_d, hd, 3);
    assert_int_equal(tg_account_publish(a, 0, &st_a), 0);
    assert_int_equal(tg_account_publish(a, 1, &st_d), 0); /* D sits after A's entry */
    assert_int_equal(tg_account_lookup(a, hd), 1);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        uint64_t end = tg_mono_ns() + 300000000ull;
        unsigned rounds = 0;
        while (tg_mono_ns() < end) {
            if (tg_account_publish(a, 0, &st_b) != 0 || tg_account_publish(a, 0, &st_a) != 0)
                _exit(2);
            rounds++;
        }
        _exit(rounds > 100 ? 0 : 3);
    }

    unsigned long iters = 0, found_a = 0, found_b = 0, read_a = 0, read_b = 0;
    int status = 0, done = 0;
    while (!done) {
        for (int k = 0; k < 256; k++) {
            int64_t la = tg_account_lookup(a, ha);
            int64_t lb = tg_account_lookup(a, hb);
            int64_t lc = tg_account_lookup(a, hc);
            int64_t ld = tg_account_lookup(a, hd);
            if (la != -1 && la != 0) {
                kill(pid, SIGKILL);
                fail_msg("lookup(A) = %lld", (long long)la);
            }
            if (lb != -1 && lb != 0) {
                kill(pid, SIGKILL);
                fail_msg("lookup(B) = %lld", (long long)lb);
            }
            if (lc != -1 || ld != 1) {
                kill(pid, SIGKILL);
                fail_msg("lookup(C) = %lld, lookup(D) = %lld during churn", (long long)lc, (long long)ld);
            }
            found_a += la == 0;
            found_b += lb == 0;
            if (tg_account_read(a, 0, &out) != 0) {
                kill(pid, SIGKILL);
                fail_msg("slot 0 read as unused during re-publishing");
            }
            if (settings_consistent(&out, ha, 1))
                read_a++;
            else if (settings_consistent(&out, hb, 2))
                read_b++;
            else {
                kill(pid, SIGKILL);
                fail_msg("torn read: id %llu name %s", (unsigned long long)out.id, out.name);
            }
            iters++;
        }
        pid_t w = waitpid(pid, &status, WNOHANG);
        assert_true(w == 0 || w == pid);
        done = w == pid;
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    if (found_a == 0 || found_b == 0 || read_a == 0 || read_b == 0)
        fail_msg("the race was not exercised: %lu iterations, A found %lu, B found %lu, read A %lu, read B %lu", iters,
                 found_a, found_b, read_a, read_b);
    /* quiescent again: the child's last publish was A */
    assert_int_equal(tg_account_lookup(a, ha), 0);
    assert_int_equal(tg_account_lookup(a, hb), -1);
    assert_int_equal(tg_account_lookup(a, hd), 1);
    assert_int_equal(live_entries_for(a, ha), 1);
    assert_int_equal(live_entries_for(a, hb), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_publish_lookup_read, setup_small, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_rotation, setup_small, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_key_moved_between_slots, setup_small, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_unpublish, setup_small, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_many_accounts, setup_large, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_tombstones, setup_tiny, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_full_hash_compared, setup_small, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_lookup_confirms_slot_key, setup_small, tg_test_arena_teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_reader, setup_tiny, tg_test_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
