/* tests/unit/test_arena.c: unit tests for shm/arena.c (creating, re-attaching and recreating the
 * shared-memory arena file) and shm/upstreams.c (upstream key slots). */
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
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/clock.h"
#include "common/keyhash.h"
#include "shm/accounts.h"
#include "shm/arena.h"
#include "shm/ring.h"
#include "shm/upstreams.h"

#include "arena_fixture.h"

/* Only the directory of tests/unit/arena_fixture.h: each test opens its arenas itself. */
typedef tg_test_arena_t fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || tg_test_arena_dir(f, "arena") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    tg_test_arena_remove(f);
    free(f);
    return 0;
}

static const tg_arena_sizes_t SIZES = {100, 10, 64};

static void open_ok(tg_arena_t *a, const char *path, const tg_arena_sizes_t *sz, int want_created)
{
    char *err = NULL;
    int created = -1;
    if (tg_arena_open(a, path, sz, &created, &err) != 0)
        fail_msg("tg_arena_open(%s): %s", path, err ? err : "(no message)");
    assert_null(err);
    assert_int_equal(created, want_created);
}

static void settings_for(tg_account_settings_t *st, const char *key, uint64_t id)
{
    memset(st, 0, sizeof(*st));
    st->id = id;
    st->parent_id = id / 2;
    st->owner_id = 1;
    st->flags = TG_ACCT_ENABLED;
    st->level = 2;
    st->depth = 3;
    tg_key_hash(key, strlen(key), st->key_hash);
    snprintf(st->name, sizeof(st->name), "account %llu", (unsigned long long)id);
}

static int is_pow2(uint64_t v)
{
    return v && (v & (v - 1)) == 0;
}

static void test_create_header(void **state)
{
    fixture_t *f = *state;
    tg_arena_t a;
    uint64_t before = tg_now_ms();
    open_ok(&a, f->path, &SIZES, 1);
    uint64_t after = tg_now_ms();
    const tg_arena_hdr_t *h = a.hdr;

    assert_ptr_equal(h, a.base);
    assert_true(h->magic == TG_ARENA_MAGIC);
    assert_int_equal(h->version, TG_ARENA_VERSION);
    assert_int_equal(h->header_size, sizeof(tg_arena_hdr_t));
    assert_int_equal(h->max_accounts, 100);
    assert_int_equal(h->max_upstreams, 10);
    assert_int_equal(h->ring_slots, 64);
    assert_true(is_pow2(h->index_slots));
    assert_true(h->index_slots >= 200 && h->index_slots < 400);
    assert_int_equal(h->account_size, sizeof(tg_account_t));
    assert_int_equal(h->index_entry_size, sizeof(tg_index_entry_t));
    assert_int_equal(h->upstream_size, sizeof(tg_upstream_t));
    assert_int_equal(h->ring_slot_size, sizeof(tg_ring_slot_t));
    assert_int_equal(sizeof(tg_ring_slot_t), TG_RING_SLOT_SIZE);
    assert_true(h->created_ms >= before && h->created_ms <= after);

    /* regions: page-aligned, in order, not overlapping, inside the file */
    uint64_t offs[] = {h->off_accounts, h->off_index, h->off_upstreams, h->off_ring};
    uint64_t ends[] = {h->off_accounts + (uint64_t)h->max_accounts * h->account_size,
                       h->off_index + (uint64_t)h->index_slots * h->index_entry_size,
                       h->off_upstreams + (uint64_t)h->max_upstreams * h->upstream_size,
                       h->off_ring + (uint64_t)h->ring_slots * h->ring_slot_size};
    assert_true(h->off_accounts >= sizeof(tg_arena_hdr_t));
    for (int i = 0; i < 4; i++) {
        assert_int_equal(offs[i] % 4096, 0);
        if (i > 0)
            assert_true(offs[i] >= ends[i - 1]);
    }
    assert_true(ends[3] <= h->total_size);
    assert_int_equal(h->total_size % 4096, 0);
    assert_true(h->total_size == tg_arena_bytes(&SIZES));
    assert_true(a.size == h->total_size);
    assert_ptr_equal((char *)a.accounts, (char *)a.base + h->off_accounts);
    assert_ptr_equal((char *)a.index, (char *)a.base + h->off_index);
    assert_ptr_equal((char *)a.upstreams, (char *)a.base + h->off_upstreams);
    assert_ptr_equal((char *)a.ring, (char *)a.base + h->off_ring);

    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_true((uint64_t)st.st_size == h->total_size);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* fresh state: every slot unused, ring empty with slot i waiting for position i */
    for (uint32_t i = 0; i < h->ring_slots; i++)
        assert_true(atomic_load(&a.ring[i].seq) == i);
    assert_true(atomic_load(&h->ring_head) == 0 && atomic_load(&h->ring_tail) == 0);
    assert_int_equal(atomic_load(&h->n_accounts_hw), 0);
    assert_int_equal(atomic_load(&h->persister_ready), 0);
    for (uint32_t i = 0; i < h->max_accounts; i++) {
        tg_account_settings_t out;
        assert_int_equal(tg_account_read(&a, i, &out), -1);
    }
    for (uint32_t i = 0; i < h->index_slots; i++)
        assert_true(atomic_load(&a.index[i].word) == 0);

    /* the whole mapping is writable */
    memset(a.ring, 0xab, (size_t)h->ring_slots * h->ring_slot_size);
    ((volatile char *)a.base)[a.size - 1] = 1;
    tg_arena_close(&a);
    assert_null(a.base);
}

/* Same sizes: the file is re-attached with its contents. */
static void test_reattach_keeps_data(void **state)
{
    fixture_t *f = *state;
    tg_arena_t a;
    tg_account_settings_t st, out;
    open_ok(&a, f->path, &SIZES, 1);
    uint64_t created_ms = a.hdr->created_ms;
    settings_for(&st, "sk-Xvs-reattach", 77);
    assert_int_equal(tg_account_publish(&a, 5, &st), 0);
    atomic_store(&a.accounts[5].balance, 123456789);
    assert_int_equal(tg_ring_push(&a, "usage-1", 7), TG_RING_OK);
    atomic_store(&a.hdr->persister_ready, 1);
    tg_arena_close(&a);

    for (int round = 0; round < 2; round++) {
        open_ok(&a, f->path, &SIZES, 0);
        assert_true(a.hdr->created_ms == created_ms);
        assert_int_equal(tg_account_read(&a, 5, &out), 0);
        assert_true(out.id == 77);
        assert_string_equal(out.name, "account 77");
        assert_memory_equal(out.key_hash, st.key_hash, 32);
        assert_int_equal(tg_account_lookup(&a, st.key_hash), 5);
        assert_int_equal(tg_account_find_id(&a, 77), 5);
        assert_true(atomic_load(&a.accounts[5].balance) == 123456789);
        assert_int_equal(atomic_load(&a.hdr->persister_ready), 1);
        /* the unreleased record is still there */
        assert_true(tg_ring_used(&a) == 1);
        const uint8_t *data;
        size_t len;
        assert_int_equal(tg_ring_peek(&a, tg_ring_tail(&a), &data, &len), TG_RING_OK);
        assert_int_equal(len, 7);
        assert_memory_equal(data, "usage-1", 7);
        tg_arena_close(&a);
    }
}

static void check_recreated(const char *path, const tg_arena_sizes_t *sz, const uint8_t hash[32])
{
    tg_arena_t a;
    open_ok(&a, path, sz, 1);
    assert_true(a.hdr->magic == TG_ARENA_MAGIC);
    assert_int_equal(a.hdr->max_accounts, sz->max_accounts);
    assert_int_equal(a.hdr->ring_slots, sz->ring_slots);
    assert_int_equal(tg_account_lookup(&a, hash), -1);
    for (uint32_t i = 0; i < a.hdr->max_accounts; i++) {
        tg_account_settings_t out;
        assert_int_equal(tg_account_read(&a, i, &out), -1);
    }
    assert_true(tg_ring_used(&a) == 0);
    assert_int_equal(atomic_load(&a.hdr->persister_ready), 0);
    for (uint32_t i = 0; i < a.hdr->ring_slots; i++)
        assert_true(atomic_load(&a.ring[i].seq) == i);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((uint64_t)st.st_size == tg_arena_bytes(sz));
    /* and it is usable */
    assert_int_equal(tg_ring_push(&a, "x", 1), TG_RING_OK);
    tg_arena_close(&a);
}

/* Writes an account and a ring record with SIZES, closes; returns the key hash. */
static void populate(const char *path, uint8_t hash[32])
{
    tg_arena_t a;
    tg_account_settings_t st;
    char *err = NULL;
    int created;
    assert_int_equal(tg_arena_open(&a, path, &SIZES, &created, &err), 0);
    settings_for(&st, "sk-Xvs-populate", 9);
    assert_int_equal(tg_account_publish(&a, 0, &st), 0);
    assert_int_equal(tg_ring_push(&a, "rec", 3), TG_RING_OK);
    atomic_store(&a.hdr->persister_ready, 1);
    memcpy(hash, st.key_hash, 32);
    tg_arena_close(&a);
}

static void test_size_mismatch_recreates(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[32];
    const tg_arena_sizes_t others[] = {
        {101, 10, 64}, /* same index size and maybe same file size: still a mismatch */
        {99, 10, 64},
        {100, 11, 64},
        {100, 9, 64}, /* same file size */
        {100, 10, 128},
        {100, 10, 32},
        {4000, 10, 64},
        {100, 10, 64, 100}, /* another journal capacity (arena.max_inflight_per_worker) */
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        populate(f->path, hash);
        check_recreated(f->path, &others[i], hash);
        /* and back to the original sizes: recreated again, nothing from before */
        check_recreated(f->path, &SIZES, hash);
    }
}

static void corrupt_at(const char *path, off_t off, const void *bytes, size_t n)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, n, off), (ssize_t)n);
    close(fd);
}

static void test_corrupt_header_recreates(void **state)
{
    fixture_t *f = *state;
    uint8_t hash[32];
    uint32_t u32;
    uint64_t u64;

    populate(f->path, hash);
    u64 = TG_ARENA_MAGIC ^ 1;
    corrupt_at(f->path, offsetof(tg_arena_hdr_t, magic), &u64, sizeof(u64));
    check_recreated(f->path, &SIZES, hash);

    populate(f->path, hash);
    u32 = TG_ARENA_VERSION + 1;
    corrupt_at(f->path, offsetof(tg_arena_hdr_t, version), &u32, sizeof(u32));
    check_recreated(f->path, &SIZES, hash);

    populate(f->path, hash);
    u32 = sizeof(tg_account_t) + 64; /* a layout from another build */
    corrupt_at(f->path, offsetof(tg_arena_hdr_t, account_size), &u32, sizeof(u32));
    check_recreated(f->path, &SIZES, hash);

    populate(f->path, hash);
    u32 = 0;
    corrupt_at(f->path, offsetof(tg_arena_hdr_t, index_slots), &u32, sizeof(u32));
    check_recreated(f->path, &SIZES, hash);

    /* a file of the right size that is all zeros, or garbage */
    populate(f->path, hash);
    assert_int_equal(truncate(f->path, 0), 0);
    assert_int_equal(truncate(f->path, (off_t)tg_arena_bytes(&SIZES)), 0);
    check_recreated(f->path, &SIZES, hash);

    populate(f->path, hash);
    char junk[512];
    memset(junk, 0x5a, sizeof(junk));
    corrupt_at(f->path, 0, junk, sizeof(junk));
    check_recreated(f->path, &SIZES, hash);

    /* a truncated file (a header that matches, but the file is short) */
    populate(f->path, hash);
    assert_int_equal(truncate(f->path, (off_t)tg_arena_bytes(&SIZES) - 4096), 0);
    check_recreated(f->path, &SIZES, hash);

    /* an empty file */
    assert_int_equal(truncate(f->path, 0), 0);
    check_recreated(f->path, &SIZES, hash);
}

static void test_bytes_monotonic(void **state)
{
    tg_arena_sizes_t base = {1, 1, 1};
    uint64_t prev = 0;
    for (uint32_t n = 1; n <= 5000; n += 7) {
        tg_arena_sizes_t s = base;
        s.max_accounts = n;
        uint64_t b = tg_arena_bytes(&s);
        assert_true(b >= prev);
        assert_int_equal(b % 4096, 0);
        assert_true(b >= (uint64_t)n * sizeof(tg_account_t) + 2ull * n * sizeof(tg_index_entry_t));
        prev = b;
    }
    prev = 0;
    for (uint32_t n = 1; n <= 3000; n += 3) {
        tg_arena_sizes_t s = base;
        s.max_upstreams = n;
        uint64_t b = tg_arena_bytes(&s);
        assert_true(b >= prev);
        assert_true(b >= (uint64_t)n * sizeof(tg_upstream_t));
        prev = b;
    }
    prev = 0;
    for (uint32_t n = 1; n <= (1u << 16); n <<= 1) {
        tg_arena_sizes_t s = base;
        s.ring_slots = n;
        uint64_t b = tg_arena_bytes(&s);
        assert_true(b >= prev);
        assert_true(b >= (uint64_t)n * TG_RING_SLOT_SIZE);
        prev = b;
    }
    /* growing any dimension by a page's worth grows the file */
    tg_arena_sizes_t s = {1000, 100, 1024};
    uint64_t b0 = tg_arena_bytes(&s);
    s.max_accounts += 64;
    assert_true(tg_arena_bytes(&s) > b0);
    s = (tg_arena_sizes_t){1000, 100, 1024};
    s.max_upstreams += 64;
    assert_true(tg_arena_bytes(&s) > b0);
    s = (tg_arena_sizes_t){1000, 100, 1024};
    s.ring_slots *= 2;
    assert_true(tg_arena_bytes(&s) > b0);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    tg_arena_t a;
    char *err = NULL;
    int created = 7;
    char path[192];

    snprintf(path, sizeof(path), "%s/no/such/dir/arena", f->dir);
    assert_int_equal(tg_arena_open(&a, path, &SIZES, &created, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file"));
    assert_null(a.base);
    free(err);

    /* a directory in the way */
    err = NULL;
    assert_int_equal(tg_arena_open(&a, f->dir, &SIZES, &created, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, f->dir));
    assert_null(a.base);
    free(err);
    tg_arena_close(&a); /* harmless on a failed open */

    /* the directory is untouched */
    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* NULL err is allowed */
    assert_int_equal(tg_arena_open(&a, path, &SIZES, &created, NULL), -1);
}

/* Two mappings of the same file (as master and workers have) see each other's writes. */
static void test_two_mappings_share(void **state)
{
    fixture_t *f = *state;
    tg_arena_t a, b;
    tg_account_settings_t st, out;
    open_ok(&a, f->path, &SIZES, 1);
    open_ok(&b, f->path, &SIZES, 0);
    settings_for(&st, "sk-Xvs-shared", 3);
    assert_int_equal(tg_account_publish(&a, 1, &st), 0);
    assert_int_equal(tg_account_lookup(&b, st.key_hash), 1);
    assert_int_equal(tg_account_read(&b, 1, &out), 0);
    assert_true(out.id == 3);
    assert_int_equal(tg_ring_push(&b, "from b", 6), TG_RING_OK);
    assert_true(tg_ring_used(&a) == 1);
    tg_arena_close(&b);
    tg_arena_close(&a);
}

static void test_upstreams(void **state)
{
    fixture_t *f = *state;
    tg_arena_t a;
    open_ok(&a, f->path, &SIZES, 1);
    tg_upstream_settings_t st, out;
    memset(&st, 0, sizeof(st));
    st.id = 11;
    st.owner_id = 2;
    st.flags = TG_UPSTREAM_ENABLED;
    st.level = 1;
    st.protocol = 2;
    snprintf(st.name, sizeof(st.name), "openai-main");
    snprintf(st.url, sizeof(st.url), "https://api.openai.com");
    st.sealed_len = TG_SEALED_MAX;
    for (uint32_t i = 0; i < TG_SEALED_MAX; i++)
        st.sealed[i] = (uint8_t)(i * 7);
    assert_int_equal(tg_upstream_count(&a), 0);
    uint64_t gen0 = atomic_load(&a.hdr->settings_gen);
    assert_int_equal(tg_upstream_publish(&a, 3, &st), 0);
    assert_true(atomic_load(&a.hdr->settings_gen) > gen0);
    assert_int_equal(tg_upstream_count(&a), 4);
    assert_int_equal(tg_upstream_read(&a, 3, &out), 0);
    assert_true(out.id == 11 && out.owner_id == 2);
    assert_int_equal(out.flags, TG_UPSTREAM_ENABLED | TG_UPSTREAM_USED);
    assert_int_equal(out.level, 1);
    assert_int_equal(out.protocol, 2);
    assert_string_equal(out.name, "openai-main");
    assert_string_equal(out.url, "https://api.openai.com");
    assert_int_equal(out.sealed_len, TG_SEALED_MAX);
    assert_memory_equal(out.sealed, st.sealed, TG_SEALED_MAX);
    assert_int_equal(tg_upstream_read(&a, 2, &out), -1);

    /* out of range, oversized secret */
    assert_int_equal(tg_upstream_publish(&a, 10, &st), -1);
    assert_int_equal(tg_upstream_read(&a, 10, &out), -1);
    st.sealed_len = TG_SEALED_MAX + 1;
    assert_int_equal(tg_upstream_publish(&a, 0, &st), -1);
    assert_int_equal(tg_upstream_read(&a, 0, &out), -1);

    /* unpublish: unused, count unchanged (a high-water mark) */
    uint64_t gen1 = atomic_load(&a.hdr->settings_gen);
    tg_upstream_unpublish(&a, 3);
    assert_true(atomic_load(&a.hdr->settings_gen) > gen1);
    assert_int_equal(tg_upstream_read(&a, 3, &out), -1);
    assert_int_equal(tg_upstream_count(&a), 4);
    tg_upstream_unpublish(&a, 99); /* out of range: ignored */
    tg_arena_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reattach_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_mismatch_recreates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_header_recreates, setup, teardown),
        cmocka_unit_test(test_bytes_monotonic),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_mappings_share, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upstreams, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
