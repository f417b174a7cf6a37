/* tests/unit/test_seal.c: unit tests for common/seal.c (AES-256-GCM sealing of provider secrets,
 * the master key file and $TOLLGATE_MASTER_KEY). */
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/keyhash.h"
#include "common/seal.h"
#include "shm/arena-t.h"

static const uint8_t KEY1[TG_MASTER_KEY_LEN] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                                0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
                                                0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};

static void key2(uint8_t k[TG_MASTER_KEY_LEN])
{
    memcpy(k, KEY1, TG_MASTER_KEY_LEN);
    k[31] ^= 0x01; /* differs from KEY1 in one bit */
}

/* A fresh directory per test; the master key env var is cleared before and after. */
typedef struct fixture {
    char dir[64];
    char file[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/tg_seal_test_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->file, sizeof(f->file), "%s/master.key", f->dir);
    unsetenv("TOLLGATE_MASTER_KEY");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    unsetenv("TOLLGATE_MASTER_KEY");
    unlink(f->file);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

static void test_round_trip(void **state)
{
    static const size_t lens[] = {0, 1, 15, 16, 17, 51, 100, 292};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i];
        char plain[300];
        for (size_t j = 0; j < len; j++)
            plain[j] = (char)('a' + (j * 7 + len) % 26);
        uint8_t sealed[400];
        int n = tg_seal(KEY1, plain, len, sealed, sizeof(sealed));
        assert_int_equal(n, (int)(len + TG_SEAL_OVERHEAD));
        if (len >= 16) /* the ciphertext does not carry the plaintext in the clear */
            assert_null(memmem(sealed, (size_t)n, plain, len));
        char out[300];
        memset(out, '#', sizeof(out));
        assert_int_equal(tg_unseal(KEY1, sealed, (size_t)n, out, sizeof(out)), (int)len);
        assert_memory_equal(out, plain, len);
        assert_int_equal(out[len], '\0');
    }
    /* a provider secret of the documented maximum (292 bytes) seals into an arena slot's buffer */
    char big[292];
    memset(big, 'k', sizeof(big));
    uint8_t slot[TG_SEALED_MAX];
    int n = tg_seal(KEY1, big, sizeof(big), slot, sizeof(slot));
    assert_int_equal(n, TG_SEALED_MAX);
    char out[TG_SEALED_MAX];
    assert_int_equal(tg_unseal(KEY1, slot, (size_t)n, out, sizeof(out)), 292);
    assert_memory_equal(out, big, sizeof(big));
}

static void test_nonce_is_random(void **state)
{
    const char *secret = "sk-provider-secret";
    uint8_t a[64], b[64];
    int na = tg_seal(KEY1, secret, strlen(secret), a, sizeof(a));
    int nb = tg_seal(KEY1, secret, strlen(secret), b, sizeof(b));
    assert_int_equal(na, nb);
    assert_memory_not_equal(a, b, 12);            /* nonces differ */
    assert_memory_not_equal(a + 12, b + 12, (size_t)na - 12); /* and so do ciphertext and tag */
    char out[64];
    assert_int_equal(tg_unseal(KEY1, a, (size_t)na, out, sizeof(out)), (int)strlen(secret));
    assert_string_equal(out, secret);
    assert_int_equal(tg_unseal(KEY1, b, (size_t)nb, out, sizeof(out)), (int)strlen(secret));
    assert_string_equal(out, secret);
}

static void test_capacity(void **state)
{
    const char *secret = "0123456789";
    uint8_t sealed[64];
    assert_int_equal(tg_seal(KEY1, secret, 10, sealed, 10 + TG_SEAL_OVERHEAD - 1), -1);
    int n = tg_seal(KEY1, secret, 10, sealed, 10 + TG_SEAL_OVERHEAD);
    assert_int_equal(n, 10 + TG_SEAL_OVERHEAD);
    char out[16];
    assert_int_equal(tg_unseal(KEY1, sealed, (size_t)n, out, 10), -1); /* no room for the NUL */
    assert_int_equal(tg_unseal(KEY1, sealed, (size_t)n, out, 11), 10);
    assert_string_equal(out, secret);
}

/* Flipping any bit of any byte (nonce, ciphertext or tag) makes opening fail. */
static void test_tamper_detected(void **state)
{
    const char *secret = "sk-ant-api03-very-secret-value";
    size_t len = strlen(secret);
    uint8_t sealed[128];
    int n = tg_seal(KEY1, secret, len, sealed, sizeof(sealed));
    assert_int_equal(n, (int)(len + TG_SEAL_OVERHEAD));
    char out[128];
    for (int i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            uint8_t copy[128];
            memcpy(copy, sealed, (size_t)n);
            copy[i] ^= (uint8_t)(1u << bit);
            if (tg_unseal(KEY1, copy, (size_t)n, out, sizeof(out)) != -1)
                fail_msg("tampered byte %d bit %d accepted", i, bit);
        }
    }
    /* truncated or extended blobs */
    for (int cut = 0; cut < n; cut++)
        if (tg_unseal(KEY1, sealed, (size_t)cut, out, sizeof(out)) != -1)
            fail_msg("blob truncated to %d bytes accepted", cut);
    uint8_t longer[129];
    memcpy(longer, sealed, (size_t)n);
    longer[n] = 0;
    assert_int_equal(tg_unseal(KEY1, longer, (size_t)n + 1, out, sizeof(out)), -1);
    /* the untouched blob still opens */
    assert_int_equal(tg_unseal(KEY1, sealed, (size_t)n, out, sizeof(out)), (int)len);
    assert_string_equal(out, secret);
}

static void test_wrong_key(void **state)
{
    uint8_t k2[TG_MASTER_KEY_LEN];
    key2(k2);
    const char *secret = "hello";
    uint8_t sealed[64];
    int n = tg_seal(KEY1, secret, 5, sealed, sizeof(sealed));
    assert_true(n > 0);
    char out[64];
    assert_int_equal(tg_unseal(k2, sealed, (size_t)n, out, sizeof(out)), -1);
    /* empty plaintext is authenticated too */
    n = tg_seal(KEY1, "", 0, sealed, sizeof(sealed));
    assert_int_equal(n, TG_SEAL_OVERHEAD);
    assert_int_equal(tg_unseal(k2, sealed, (size_t)n, out, sizeof(out)), -1);
    assert_int_equal(tg_unseal(KEY1, sealed, (size_t)n, out, sizeof(out)), 0);
    assert_string_equal(out, "");
}

/* No env, no file: a random key is generated into a 0600 file and read back identically. */
static void test_master_key_file_generated(void **state)
{
    fixture_t *f = *state;
    uint8_t k1[TG_MASTER_KEY_LEN], k2[TG_MASTER_KEY_LEN], zero[TG_MASTER_KEY_LEN] = {0};
    char *err = NULL;
    assert_int_equal(tg_master_key_load(f->file, k1, &err), 0);
    assert_null(err);
    assert_memory_not_equal(k1, zero, sizeof(zero));

    struct stat st;
    assert_int_equal(stat(f->file, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);

    /* the file holds the key as 64 lowercase hex characters */
    char buf[256] = {0}, hex[2 * TG_MASTER_KEY_LEN + 1];
    FILE *fp = fopen(f->file, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    tg_hex(k1, sizeof(k1), hex);
    assert_true(n == 64 || (n == 65 && buf[64] == '\n'));
    assert_memory_equal(buf, hex, 64);

    /* stable across loads */
    for (int i = 0; i < 3; i++) {
        memset(k2, 0, sizeof(k2));
        assert_int_equal(tg_master_key_load(f->file, k2, &err), 0);
        assert_null(err);
        assert_memory_equal(k1, k2, sizeof(k1));
    }
    /* a sealed blob survives a "restart" */
    uint8_t sealed[64];
    char out[64];
    int sn = tg_seal(k1, "abc", 3, sealed, sizeof(sealed));
    assert_int_equal(tg_unseal(k2, sealed, (size_t)sn, out, sizeof(out)), 3);

    /* another file gets another key */
    char other[160];
    snprintf(other, sizeof(other), "%s/other.key", f->dir);
    assert_int_equal(tg_master_key_load(other, k2, &err), 0);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    unlink(other);
}

static void test_master_key_file_hand_written(void **state)
{
    fixture_t *f = *state;
    uint8_t k[TG_MASTER_KEY_LEN];
    char *err = NULL;
    /* uppercase, no trailing newline */
    write_file(f->file, "00112233445566778899AABBCCDDEEFF0123456789ABCDEFFEDCBA9876543210");
    assert_int_equal(tg_master_key_load(f->file, k, &err), 0);
    assert_null(err);
    assert_memory_equal(k, KEY1, sizeof(k));
    /* lowercase with a newline */
    write_file(f->file, "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n");
    memset(k, 0, sizeof(k));
    assert_int_equal(tg_master_key_load(f->file, k, &err), 0);
    assert_memory_equal(k, KEY1, sizeof(k));
}

static void test_master_key_file_malformed(void **state)
{
    fixture_t *f = *state;
    const char *bad[] = {
        "",
        "hello\n",
        "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321\n",   /* 63 */
        "00112233445566778899aabbccddeeff0123456789abcdeffedcba98765432100\n", /* 65 */
        "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321g\n",  /* non-hex */
        " 00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n", /* leading space */
        "0x112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(f->file, bad[i]);
        uint8_t k[TG_MASTER_KEY_LEN];
        char *err = NULL;
        if (tg_master_key_load(f->file, k, &err) != -1)
            fail_msg("accepted master key file content \"%s\"", bad[i]);
        assert_non_null(err);
        assert_non_null(strstr(err, f->file));
        assert_non_null(strstr(err, "64 hex"));
        free(err);
        /* the bad file is left alone, not replaced by a new key */
        FILE *fp = fopen(f->file, "r");
        assert_non_null(fp);
        char buf[128] = {0};
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        assert_int_equal(n, strlen(bad[i]));
        assert_memory_equal(buf, bad[i], n);
    }
}

static void test_master_key_file_unusable_path(void **state)
{
    fixture_t *f = *state;
    uint8_t k[TG_MASTER_KEY_LEN];
    char *err = NULL;
    char path[192];
    snprintf(path, sizeof(path), "%s/no/such/dir/master.key", f->dir);
    assert_int_equal(tg_master_key_load(path, k, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, path));
    free(err);
    /* a directory where the file should be */
    err = NULL;
    assert_int_equal(tg_master_key_load(f->dir, k, &err), -1);
    assert_non_null(err);
    assert_non_null(strstr(err, f->dir));
    free(err);
}

static void test_master_key_env(void **state)
{
    fixture_t *f = *state;
    uint8_t k[TG_MASTER_KEY_LEN];
    char *err = NULL;

    /* the env var wins over the file, and no file is created */
    setenv("TOLLGATE_MASTER_KEY", "00112233445566778899aabbccddEEFF0123456789abcdeffedcba9876543210", 1);
    assert_int_equal(tg_master_key_load(f->file, k, &err), 0);
    assert_null(err);
    assert_memory_equal(k, KEY1, sizeof(k));
    assert_int_equal(access(f->file, F_OK), -1);

    write_file(f->file, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n");
    memset(k, 0, sizeof(k));
    assert_int_equal(tg_master_key_load(f->file, k, &err), 0);
    assert_memory_equal(k, KEY1, sizeof(k));

    const char *bad[] = {
        "00112233445566778899aabbccddeeff0123456789abcdeffedcba987654321",   /* 63 */
        "00112233445566778899aabbccddeeff0123456789abcdeffedcba98765432100", /* 65 */
        "zz112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210",
        "not a key",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("TOLLGATE_MASTER_KEY", bad[i], 1);
        err = NULL;
        if (tg_master_key_load(f->file, k, &err) != -1)
            fail_msg("accepted TOLLGATE_MASTER_KEY=%s", bad[i]);
        assert_non_null(err);
        assert_non_null(strstr(err, "TOLLGATE_MASTER_KEY"));
        free(err);
    }

    /* empty means unset: the file is used */
    setenv("TOLLGATE_MASTER_KEY", "", 1);
    err = NULL;
    assert_int_equal(tg_master_key_load(f->file, k, &err), 0);
    uint8_t ff[TG_MASTER_KEY_LEN];
    memset(ff, 0xff, sizeof(ff));
    assert_memory_equal(k, ff, sizeof(k));

    unsetenv("TOLLGATE_MASTER_KEY");
    memset(k, 0, sizeof(k));
    assert_int_equal(tg_master_key_load(f->file, k, &err), 0);
    assert_memory_equal(k, ff, sizeof(k));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_nonce_is_random),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_tamper_detected),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test_setup_teardown(test_master_key_file_generated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_file_hand_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_file_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_file_unusable_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_master_key_env, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
