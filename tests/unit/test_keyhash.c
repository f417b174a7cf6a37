/* tests/unit/test_keyhash.c: unit tests for common/keyhash.c (API key generation and validation,
 * SHA-256 key digests, hex encoding). */
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

#include <cmocka.h>

#include "common/keyhash.h"

#define PREFIX_LEN (sizeof(TG_KEY_PREFIX) - 1)

static int is_alnum_ascii(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void test_generated_keys_are_valid(void **state)
{
    assert_int_equal(TG_KEY_LEN, 51);
    assert_string_equal(TG_KEY_PREFIX, "sk-Xvs");
    for (int n = 0; n < 200; n++) {
        char key[TG_KEY_LEN + 1];
        memset(key, 'Q', sizeof(key)); /* so a missing terminator shows */
        assert_int_equal(tg_key_generate(key), 0);
        assert_int_equal(strlen(key), 51);
        assert_memory_equal(key, "sk-Xvs", 6);
        for (size_t i = PREFIX_LEN; i < TG_KEY_LEN; i++)
            if (!is_alnum_ascii(key[i]))
                fail_msg("key %s has a bad character at %zu", key, i);
        assert_true(tg_key_is_valid(key, strlen(key)));
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1000 keys: all distinct, and together they use the whole 62-character alphabet. */
static void test_generated_keys_unique_and_cover_alphabet(void **state)
{
    enum { N = 1000 };
    char *keys[N];
    unsigned counts[256] = {0};
    for (int i = 0; i < N; i++) {
        keys[i] = malloc(TG_KEY_LEN + 1);
        assert_non_null(keys[i]);
        assert_int_equal(tg_key_generate(keys[i]), 0);
        for (size_t j = PREFIX_LEN; j < TG_KEY_LEN; j++)
            counts[(unsigned char)keys[i][j]]++;
    }
    qsort(keys, N, sizeof(keys[0]), cmp_str);
    for (int i = 1; i < N; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            fail_msg("duplicate key %s", keys[i]);
    /* 45,000 random characters, each of the 62 expected ~726 times. A generator that drops part of
     * the alphabet, or draws with modulo bias (e.g. rnd % 62 over all 256 byte values: the first
     * 8 characters 25% more often), fails the chi-square bound; a fair one exceeds it with a
     * probability of about 1e-9 (61 degrees of freedom, mean 61, bound 150). */
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned total = 0;
    double expected = (double)N * (TG_KEY_LEN - PREFIX_LEN) / 62.0, chi2 = 0;
    for (const char *c = alphabet; *c; c++) {
        unsigned n = counts[(unsigned char)*c];
        if (n == 0)
            fail_msg("character '%c' never drawn in 45000", *c);
        chi2 += (n - expected) * (n - expected) / expected;
        total += n;
    }
    if (chi2 > 150)
        fail_msg("key characters are not uniform: chi-square %.1f over 62 characters", chi2);
    assert_int_equal(total, N * (TG_KEY_LEN - PREFIX_LEN));
    for (int i = 0; i < N; i++)
        free(keys[i]);
}

static void test_validation(void **state)
{
    char good[TG_KEY_LEN + 1];
    memcpy(good, "sk-Xvs", 6);
    for (size_t i = 6; i < TG_KEY_LEN; i++)
        good[i] = "aZ09"[i % 4];
    good[TG_KEY_LEN] = '\0';
    assert_true(tg_key_is_valid(good, TG_KEY_LEN));

    /* length */
    assert_false(tg_key_is_valid(good, TG_KEY_LEN - 1));
    assert_false(tg_key_is_valid("", 0));
    assert_false(tg_key_is_valid("sk-Xvs", 6));
    char longer[TG_KEY_LEN + 2];
    memcpy(longer, good, TG_KEY_LEN);
    longer[TG_KEY_LEN] = 'a';
    longer[TG_KEY_LEN + 1] = '\0';
    assert_false(tg_key_is_valid(longer, TG_KEY_LEN + 1));
    /* only LEN bytes count: a valid key followed by more text, passed with len 51, is valid */
    assert_true(tg_key_is_valid(longer, TG_KEY_LEN));

    /* prefix: each of its characters changed */
    const char *bad_prefixes[] = {"Sk-Xvs", "sK-Xvs", "sk_Xvs", "sk-xvs", "sk-XVs", "sk-XvS", "pk-Xvs", "sk-Xva"};
    for (size_t i = 0; i < sizeof(bad_prefixes) / sizeof(bad_prefixes[0]); i++) {
        char k[TG_KEY_LEN + 1];
        memcpy(k, good, sizeof(k));
        memcpy(k, bad_prefixes[i], 6);
        if (tg_key_is_valid(k, TG_KEY_LEN))
            fail_msg("accepted prefix %s", bad_prefixes[i]);
    }

    /* body: a bad character at any position */
    const char bad_chars[] = {'-', '_', ' ', '=', '+', '/', '.', '\0', '\n', (char)0x80, (char)0xc3, '`', '{', '@', '[', ':'};
    for (size_t pos = PREFIX_LEN; pos < TG_KEY_LEN; pos++) {
        for (size_t j = 0; j < sizeof(bad_chars); j++) {
            char k[TG_KEY_LEN + 1];
            memcpy(k, good, sizeof(k));
            k[pos] = bad_chars[j];
            if (tg_key_is_valid(k, TG_KEY_LEN))
                fail_msg("accepted char 0x%02x at %zu", (unsigned char)bad_chars[j], pos);
        }
    }
}

static void hash_hex(const char *s, size_t len, char out[65])
{
    uint8_t h[TG_KEY_HASH_LEN];
    tg_key_hash(s, len, h);
    tg_hex(h, sizeof(h), out);
}

static void test_hash_known_vectors(void **state)
{
    char hex[65];
    hash_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hash_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hash_hex(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* LEN bytes are hashed, not up to a NUL */
    hash_hex("abcdef", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* deterministic, and different keys give different digests */
    uint8_t a[32], b[32], c[32];
    tg_key_hash("sk-Xvs1", 7, a);
    tg_key_hash("sk-Xvs1", 7, b);
    tg_key_hash("sk-Xvs2", 7, c);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
}

static void test_hex(void **state)
{
    const uint8_t in[] = {0x00, 0x01, 0x0f, 0x10, 0x7f, 0x80, 0xab, 0xfe, 0xff};
    char out[2 * sizeof(in) + 2];
    memset(out, '#', sizeof(out));
    tg_hex(in, sizeof(in), out);
    assert_string_equal(out, "00010f107f80abfeff");
    assert_int_equal(out[2 * sizeof(in) + 1], '#'); /* nothing written past the terminator */

    char empty[2] = {'#', '#'};
    tg_hex(in, 0, empty);
    assert_int_equal(empty[0], '\0');
    assert_int_equal(empty[1], '#');

    /* every byte value */
    for (unsigned v = 0; v < 256; v++) {
        uint8_t byte = (uint8_t)v;
        char h[3], want[3];
        tg_hex(&byte, 1, h);
        snprintf(want, sizeof(want), "%02x", v);
        assert_string_equal(h, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_keys_are_valid),
        cmocka_unit_test(test_generated_keys_unique_and_cover_alphabet),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_hash_known_vectors),
        cmocka_unit_test(test_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
