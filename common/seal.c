/* AES-256-GCM sealing (OpenSSL EVP) and the master key file. */
#include "common/seal.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/keyhash.h"

static int parse_hex_key(const char *s, uint8_t key[TG_MASTER_KEY_LEN])
{
    for (int i = 0; i < TG_MASTER_KEY_LEN; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        key[i] = (uint8_t)v;
    }
    return 0;
}

static int hex_key_ok(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n == 2 * TG_MASTER_KEY_LEN && (s[n] == '\0' || s[n] == '\n');
}

/* fsyncs the directory holding PATH, so a new name in it survives a crash. */
static void sync_parent_dir(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof(dir), ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int tg_master_key_load(const char *file, uint8_t key[TG_MASTER_KEY_LEN], char **err)
{
    const char *env = getenv("TOLLGATE_MASTER_KEY");
    if (env && *env) {
        if (!hex_key_ok(env) || parse_hex_key(env, key) != 0) {
            *err = strdup("TOLLGATE_MASTER_KEY: must be 64 hex characters");
            return -1;
        }
        return 0;
    }
    char buf[130] = {0};
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0 || !hex_key_ok(buf) || parse_hex_key(buf, key) != 0) {
            if (asprintf(err, "%s: master key file must hold 64 hex characters", file) < 0)
                *err = NULL;
            return -1;
        }
        return 0;
    }
    if (errno != ENOENT) {
        if (asprintf(err, "%s: cannot read master key: %s", file, strerror(errno)) < 0)
            *err = NULL;
        return -1;
    }
    if (RAND_bytes(key, TG_MASTER_KEY_LEN) != 1) {
        *err = strdup("cannot generate a master key: RNG failure");
        return -1;
    }
    tg_hex(key, TG_MASTER_KEY_LEN, buf);
    buf[2 * TG_MASTER_KEY_LEN] = '\n';
    /* written to a temporary file and linked into place: a crash never leaves a partial key */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && write(fd, buf, 2 * TG_MASTER_KEY_LEN + 1) == 2 * TG_MASTER_KEY_LEN + 1 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || link(tmp, file) != 0) {
        if (asprintf(err, "%s: cannot write master key: %s", file, strerror(errno)) < 0)
            *err = NULL;
        unlink(tmp);
        OPENSSL_cleanse(buf, sizeof(buf));
        return -1;
    }
    unlink(tmp);
    OPENSSL_cleanse(buf, sizeof(buf));
    sync_parent_dir(file);
    return 0;
}

int tg_seal(const uint8_t key[TG_MASTER_KEY_LEN], const void *plain, size_t len, uint8_t *out, size_t cap)
{
    if (cap < len + TG_SEAL_OVERHEAD || len > (size_t)INT32_MAX)
        return -1;
    int ok = 0, n = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx && RAND_bytes(out, 12) == 1 && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
        EVP_EncryptUpdate(ctx, out + 12, &n, plain, (int)len) == 1 &&
        EVP_EncryptFinal_ex(ctx, out + 12 + n, &fin) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n + fin) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 12 + n + fin + 16 : -1;
}

int tg_unseal(const uint8_t key[TG_MASTER_KEY_LEN], const uint8_t *sealed, size_t len, char *out, size_t cap)
{
    if (len < TG_SEAL_OVERHEAD || cap < len - TG_SEAL_OVERHEAD + 1)
        return -1;
    size_t clen = len - TG_SEAL_OVERHEAD;
    int ok = 0, n = 0, fin = 0;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, sealed) == 1 &&
        EVP_DecryptUpdate(ctx, (unsigned char *)out, &n, sealed + 12, (int)clen) == 1 &&
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)(sealed + 12 + clen)) == 1 &&
        EVP_DecryptFinal_ex(ctx, (unsigned char *)out + n, &fin) == 1)
        ok = 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, cap); /* never leave unauthenticated plaintext behind */
        return -1;
    }
    out[n + fin] = '\0';
    return n + fin;
}
