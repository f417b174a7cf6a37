/* tests/unit/test_usage.c: unit tests for shm/usage.c (msgpack encoding of usage records). */
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
#include <errno.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include "shm/arena-t.h"
#include "shm/usage.h"

static void fill_str(char *dst, size_t len, char base)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (char)(base + i % 26);
    dst[len] = '\0';
}

static void assert_usage_equal(const tg_usage_t *a, const tg_usage_t *b)
{
    assert_string_equal(a->request_id, b->request_id);
    assert_true(a->ts_ms == b->ts_ms);
    assert_true(a->account_id == b->account_id);
    assert_true(a->upstream_id == b->upstream_id);
    assert_string_equal(a->model, b->model);
    assert_string_equal(a->path, b->path);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->flags, b->flags);
    assert_true(a->prompt_tokens == b->prompt_tokens);
    assert_true(a->completion_tokens == b->completion_tokens);
    assert_true(a->cached_tokens == b->cached_tokens);
    assert_true(a->cost_nanos == b->cost_nanos);
    assert_int_equal(a->latency_ms, b->latency_ms);
    assert_int_equal(a->ttfb_ms, b->ttfb_ms);
    assert_string_equal(a->run_id, b->run_id);
}

static void round_trip(const tg_usage_t *in, size_t cap)
{
    uint8_t buf[1024];
    assert_true(cap <= sizeof(buf));
    int n = tg_usage_encode(in, buf, cap);
    assert_true(n > 0);
    assert_true((size_t)n <= cap);
    tg_usage_t out;
    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(tg_usage_decode(buf, (size_t)n, &out), 0);
    assert_usage_equal(in, &out);
    assert_memory_equal(in, &out, sizeof(out)); /* strings are zero-filled past their end too */
}

static void test_round_trip_every_field(void **state)
{
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req_01HZX3Q4A5B6C7D8E9F0");
    u.ts_ms = 1718000000123ull;
    u.account_id = 42;
    u.upstream_id = 7;
    strcpy(u.model, "gpt-4o-mini-2024-07-18");
    strcpy(u.path, "/v1/chat/completions");
    u.status = 200;
    u.flags = TG_USAGE_STREAM | TG_USAGE_ESTIMATED | TG_USAGE_ABORTED;
    u.prompt_tokens = 1234;
    u.completion_tokens = 567;
    u.cached_tokens = 89;
    u.cost_nanos = 123456789;
    u.latency_ms = 2500;
    u.ttfb_ms = 310;
    strcpy(u.run_id, "run_abc123");
    round_trip(&u, 1024);

    /* each field alone differs from zero: catches fields swapped or dropped by the codec */
    for (int field = 0; field < 14; field++) {
        tg_usage_t v;
        memset(&v, 0, sizeof(v));
        strcpy(v.request_id, "r");
        switch (field) {
        case 0: v.ts_ms = 1; break;
        case 1: v.account_id = 2; break;
        case 2: v.upstream_id = 3; break;
        case 3: strcpy(v.model, "m"); break;
        case 4: strcpy(v.path, "p"); break;
        case 5: v.status = 5; break;
        case 6: v.flags = 6; break;
        case 7: v.prompt_tokens = 7; break;
        case 8: v.completion_tokens = 8; break;
        case 9: v.cached_tokens = 9; break;
        case 10: v.cost_nanos = -10; break;
        case 11: v.latency_ms = 11; break;
        case 12: v.ttfb_ms = 12; break;
        case 13: strcpy(v.run_id, "run_1"); break;
        }
        round_trip(&v, 1024);
    }
}

static void test_round_trip_extremes(void **state)
{
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "x");
    u.ts_ms = UINT64_MAX;
    u.account_id = UINT64_MAX - 1;
    u.upstream_id = (uint64_t)1 << 63;
    u.status = UINT32_MAX;
    u.flags = UINT32_MAX;
    u.prompt_tokens = UINT64_MAX;
    u.completion_tokens = (uint64_t)UINT32_MAX + 1;
    u.cached_tokens = 0;
    u.cost_nanos = INT64_MIN;
    u.latency_ms = UINT32_MAX;
    u.ttfb_ms = 0;
    round_trip(&u, 1024);
    u.cost_nanos = INT64_MAX;
    round_trip(&u, 1024);
    u.cost_nanos = -1;
    round_trip(&u, 1024);
}

/* The longest strings the struct holds, and the widest integers, fit one ring slot. */
static void test_max_length_fits_ring_payload(void **state)
{
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    fill_str(u.request_id, TG_REQUEST_ID_MAX - 1, 'a');
    fill_str(u.model, TG_MODEL_MAX - 1, 'A');
    fill_str(u.path, TG_PATH_MAX - 1, 'a');
    u.path[0] = '/';
    fill_str(u.run_id, TG_RUN_ID_MAX - 1, 'r');
    u.ts_ms = u.account_id = u.upstream_id = UINT64_MAX;
    u.prompt_tokens = u.completion_tokens = u.cached_tokens = UINT64_MAX;
    u.status = u.flags = u.latency_ms = u.ttfb_ms = UINT32_MAX;
    u.cost_nanos = INT64_MIN;
    uint8_t buf[TG_RING_PAYLOAD];
    int n = tg_usage_encode(&u, buf, sizeof(buf));
    assert_true(n > 0 && n <= (int)TG_RING_PAYLOAD);
    round_trip(&u, TG_RING_PAYLOAD);
}

/* Every capacity below the encoded length fails; the exact length succeeds with the same bytes. */
static void test_buffer_too_small(void **state)
{
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    fill_str(u.request_id, 39, 'a');
    fill_str(u.model, 30, 'A');
    strcpy(u.path, "/v1/messages");
    u.ts_ms = 1718000000123ull;
    u.prompt_tokens = 100000;
    u.cost_nanos = -5;
    uint8_t ref[1024];
    int len = tg_usage_encode(&u, ref, sizeof(ref));
    assert_true(len > 0);
    for (int cap = 0; cap < len; cap++) {
        uint8_t *buf = malloc((size_t)cap + 1); /* exact size under ASan: no write past cap */
        assert_non_null(buf);
        if (tg_usage_encode(&u, buf, (size_t)cap) != -1)
            fail_msg("encoded %d bytes into a %d-byte buffer", len, cap);
        free(buf);
    }
    uint8_t *exact = malloc((size_t)len);
    assert_non_null(exact);
    assert_int_equal(tg_usage_encode(&u, exact, (size_t)len), len);
    assert_memory_equal(exact, ref, (size_t)len);
    free(exact);
}

static void test_garbage_rejected(void **state)
{
    tg_usage_t out;
    /* empty, reserved byte, and well-formed msgpack values that are not maps */
    assert_int_equal(tg_usage_decode((const uint8_t *)"", 0, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"\xc1", 1, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"\x01", 1, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"\xc0", 1, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"\xa3rid", 4, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"\x92\xa3rid\xa1x", 7, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"{\"rid\":\"x\"}", 11, &out), -1);
    assert_int_equal(tg_usage_decode((const uint8_t *)"\x80", 1, &out), -1); /* empty map */

    /* every truncation of a valid record (decoded from an exact-size copy: no read past the end) */
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req-1");
    strcpy(u.model, "claude-sonnet-4");
    u.ts_ms = 1718000000000ull;
    uint8_t ref[512];
    int len = tg_usage_encode(&u, ref, sizeof(ref));
    assert_true(len > 0);
    for (int cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc((size_t)cut + 1);
        assert_non_null(copy);
        memcpy(copy, ref, (size_t)cut);
        if (tg_usage_decode(copy, (size_t)cut, &out) != -1)
            fail_msg("record truncated to %d of %d bytes decoded", cut, len);
        free(copy);
    }

    /* pseudo-random bytes (including container headers with huge counts) */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int trial = 0; trial < 2000; trial++) {
        uint8_t buf[64];
        size_t n = 1 + (size_t)(trial % 64);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        uint8_t *copy = malloc(n);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        int rc = tg_usage_decode(copy, n, &out);
        free(copy);
        if (rc != -1)
            fail_msg("random bytes decoded as a usage record (trial %d)", trial);
    }
}

/* Hand-crafted maps. */
typedef struct packer {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} packer_t;

static void pk_init(packer_t *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

static void pk_str(packer_t *p, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(&p->pk, n);
    msgpack_pack_str_body(&p->pk, s, n);
}

static int pk_decode(packer_t *p, tg_usage_t *out)
{
    int rc = tg_usage_decode((const uint8_t *)p->sb.data, p->sb.size, out);
    msgpack_sbuffer_destroy(&p->sb);
    return rc;
}

static void test_missing_or_bad_rid_rejected(void **state)
{
    tg_usage_t out;
    packer_t p;

    /* every field but rid */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 3);
    pk_str(&p, "ts");
    msgpack_pack_uint64(&p.pk, 1);
    pk_str(&p, "acct");
    msgpack_pack_uint64(&p.pk, 2);
    pk_str(&p, "model");
    pk_str(&p, "gpt");
    assert_int_equal(pk_decode(&p, &out), -1);

    /* empty rid */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 2);
    pk_str(&p, "rid");
    pk_str(&p, "");
    pk_str(&p, "ts");
    msgpack_pack_uint64(&p.pk, 1);
    assert_int_equal(pk_decode(&p, &out), -1);

    /* rid that is not a string */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p, "rid");
    msgpack_pack_uint64(&p.pk, 12345);
    assert_int_equal(pk_decode(&p, &out), -1);

    pk_init(&p);
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p, "rid");
    msgpack_pack_nil(&p.pk);
    assert_int_equal(pk_decode(&p, &out), -1);

    /* a key spelled differently is not rid */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 2);
    pk_str(&p, "RID");
    pk_str(&p, "abc");
    pk_str(&p, "rid2");
    pk_str(&p, "abc");
    assert_int_equal(pk_decode(&p, &out), -1);

    /* a known numeric field with a string value */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 2);
    pk_str(&p, "rid");
    pk_str(&p, "abc");
    pk_str(&p, "ts");
    pk_str(&p, "1718000000000");
    assert_int_equal(pk_decode(&p, &out), -1);

    /* a known string field with a numeric value */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 2);
    pk_str(&p, "rid");
    pk_str(&p, "abc");
    pk_str(&p, "model");
    msgpack_pack_uint64(&p.pk, 4);
    assert_int_equal(pk_decode(&p, &out), -1);
}

/* A newer writer's extra keys (any type, even non-string keys) are skipped; missing fields are 0. */
static void test_unknown_keys_ignored(void **state)
{
    tg_usage_t out;
    packer_t p;
    pk_init(&p);
    msgpack_pack_map(&p.pk, 9);
    pk_str(&p, "future");
    msgpack_pack_array(&p.pk, 3);
    msgpack_pack_uint64(&p.pk, 1);
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p, "rid"); /* a nested "rid" must not count */
    pk_str(&p, "nested");
    msgpack_pack_double(&p.pk, 2.5);
    pk_str(&p, "rid");
    pk_str(&p, "req-42");
    msgpack_pack_uint64(&p.pk, 99); /* integer key */
    pk_str(&p, "ignored");
    pk_str(&p, "model");
    pk_str(&p, "m1");
    pk_str(&p, "note");
    pk_str(&p, "free text");
    pk_str(&p, "cost");
    msgpack_pack_int64(&p.pk, -77);
    pk_str(&p, "flag");
    msgpack_pack_true(&p.pk);
    pk_str(&p, "st");
    msgpack_pack_uint8(&p.pk, 201); /* compact integer forms decode too */
    pk_str(&p, "v");
    msgpack_pack_uint64(&p.pk, 2);
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(pk_decode(&p, &out), 0);
    assert_string_equal(out.request_id, "req-42");
    assert_string_equal(out.model, "m1");
    assert_int_equal(out.cost_nanos, -77);
    assert_int_equal(out.status, 201);
    assert_string_equal(out.path, "");
    assert_true(out.ts_ms == 0 && out.account_id == 0 && out.upstream_id == 0);
    assert_true(out.prompt_tokens == 0 && out.completion_tokens == 0 && out.cached_tokens == 0);
    assert_int_equal(out.flags, 0);
    assert_int_equal(out.latency_ms, 0);
    assert_int_equal(out.ttfb_ms, 0);

    /* the nested "rid" alone does not make a record */
    pk_init(&p);
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p, "x");
    msgpack_pack_map(&p.pk, 1);
    pk_str(&p, "rid");
    pk_str(&p, "nested");
    assert_int_equal(pk_decode(&p, &out), -1);
}

/* Over-long strings from a foreign writer are truncated, never overflow the fields. */
static void test_long_strings_truncated(void **state)
{
    char rid[200], model[300];
    fill_str(rid, sizeof(rid) - 1, 'a');
    fill_str(model, sizeof(model) - 1, 'A');
    tg_usage_t out;
    packer_t p;
    pk_init(&p);
    msgpack_pack_map(&p.pk, 3);
    pk_str(&p, "rid");
    pk_str(&p, rid);
    pk_str(&p, "model");
    pk_str(&p, model);
    pk_str(&p, "path");
    pk_str(&p, model);
    assert_int_equal(pk_decode(&p, &out), 0);
    assert_int_equal(strlen(out.request_id), TG_REQUEST_ID_MAX - 1);
    assert_memory_equal(out.request_id, rid, TG_REQUEST_ID_MAX - 1);
    assert_int_equal(strlen(out.model), TG_MODEL_MAX - 1);
    assert_memory_equal(out.model, model, TG_MODEL_MAX - 1);
    assert_int_equal(strlen(out.path), TG_PATH_MAX - 1);
}

/* Decodes BUF in a child process, so that an abort (ASan's allocator refusing a giant request) is
 * reported as a test failure instead of killing the test binary. Without ASan the child runs under
 * a 4 GiB address-space limit and a failed allocation (errno ENOMEM) counts as a failure too.
 * Returns the decode result. */
static int decode_in_child(const uint8_t *buf, size_t len)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
#ifndef __SANITIZE_ADDRESS__
        struct rlimit rl = {(rlim_t)4 << 30, (rlim_t)4 << 30};
        setrlimit(RLIMIT_AS, &rl);
#endif
        tg_usage_t out;
        errno = 0;
        int rc = tg_usage_decode(buf, len, &out);
        if (errno == ENOMEM)
            _exit(13);
        _exit(rc == 0 ? 10 : rc == -1 ? 11 : 12);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) < 10 || WEXITSTATUS(status) == 13)
        fail_msg("tg_usage_decode aborted or ran out of memory on a %zu-byte input (wait status 0x%x): a tiny "
                 "input declaring a huge msgpack array/map makes msgpack allocate count * sizeof(object) up front",
                 len, status);
    return WEXITSTATUS(status) == 10 ? 0 : -1;
}

/* A few bytes that declare a container of 2^32-1 elements are garbage like any other: -1, without
 * trying to allocate tens of gigabytes first (which aborts under ASan, and can exhaust memory). */
static void test_huge_count_rejected(void **state)
{
    static const uint8_t top_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t top_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa3, 'r', 'i', 'd'};
    /* a plausible record whose unknown member claims a huge array */
    static const uint8_t nested[] = {0x82, 0xa3, 'r', 'i', 'd', 0xa1, 'x', 0xa1, 'z', 0xdd, 0x7f, 0xff, 0xff, 0xff};
    /* control: the harness itself passes a well-formed record and small garbage */
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req-ok");
    uint8_t ok[TG_RING_PAYLOAD];
    int n = tg_usage_encode(&u, ok, sizeof(ok));
    assert_true(n > 0);
    assert_int_equal(decode_in_child(ok, (size_t)n), 0);
    assert_int_equal(decode_in_child((const uint8_t *)"\xc1", 1), -1);

    assert_int_equal(decode_in_child(top_array, sizeof(top_array)), -1);
    assert_int_equal(decode_in_child(top_map, sizeof(top_map)), -1);
    assert_int_equal(decode_in_child(nested, sizeof(nested)), -1);
}

/* A record without a run (every record written before runs were billed) keeps its bytes: the
 * encoder adds "run" only when set, so it has the 15 keys it always had, and decodes with no run. */
static void test_no_run_keeps_old_layout(void **state)
{
    tg_usage_t u;
    memset(&u, 0, sizeof(u));
    strcpy(u.request_id, "req_old");
    strcpy(u.model, "gpt-4o");
    u.prompt_tokens = 3;
    uint8_t buf[1024];
    int n = tg_usage_encode(&u, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(buf[0], 0x80 | 15); /* fixmap of 15 */
    assert_null(memmem(buf, (size_t)n, "\xa3run", 4));
    tg_usage_t out;
    memset(&out, 0xa5, sizeof(out));
    assert_int_equal(tg_usage_decode(buf, (size_t)n, &out), 0);
    assert_string_equal(out.run_id, "");
    strcpy(u.run_id, "run_x");
    n = tg_usage_encode(&u, buf, sizeof(buf));
    assert_int_equal(buf[0], 0xde); /* map 16 */
    assert_int_equal(buf[1] << 8 | buf[2], 16);
    assert_non_null(memmem(buf, (size_t)n, "\xa3run\xa5run_x", 10));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_field),
        cmocka_unit_test(test_no_run_keeps_old_layout),
        cmocka_unit_test(test_round_trip_extremes),
        cmocka_unit_test(test_max_length_fits_ring_payload),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_garbage_rejected),
        cmocka_unit_test(test_missing_or_bad_rid_rejected),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_long_strings_truncated),
        cmocka_unit_test(test_huge_count_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
