/* API key generation, validation and hashing (OpenSSL SHA-256 and RAND_bytes). */
/* SHA256_Init/Update/Final: OpenSSL 3 marks them deprecated in favour of EVP, but they call the
 * same (SHA-NI) block function without EVP's per-call algorithm fetch and context allocation:
 * 93 ns per key here, against 325 ns for SHA256() and 165 ns for a reused EVP_MD_CTX. Every
 * request hashes its key, so the 1.1.1 API level is requested for this file. */
#define OPENSSL_API_COMPAT 0x10101000L
#include "common/keyhash.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <string.h>

void tg_key_hash(const char *key, size_t len, uint8_t out[TG_KEY_HASH_LEN])
{
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, key, len);
    SHA256_Final(out, &c);
}

static const char g_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

int tg_key_generate(char out[TG_KEY_LEN + 1])
{
    const size_t prefix = sizeof(TG_KEY_PREFIX) - 1;
    unsigned char rnd[TG_KEY_LEN];
    memcpy(out, TG_KEY_PREFIX, prefix);
    for (size_t i = prefix; i < TG_KEY_LEN;) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return -1;
        for (size_t j = 0; j < sizeof(rnd) && i < TG_KEY_LEN; j++)
            if (rnd[j] < 248) /* 248 = 4 * 62: keeps the draw uniform */
                out[i++] = g_alphabet[rnd[j] % 62];
    }
    out[TG_KEY_LEN] = '\0';
    return 0;
}

int tg_key_is_valid(const char *s, size_t len)
{
    const size_t prefix = sizeof(TG_KEY_PREFIX) - 1;
    if (len != TG_KEY_LEN || memcmp(s, TG_KEY_PREFIX, prefix) != 0)
        return 0;
    for (size_t i = prefix; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

void tg_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int tg_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tg_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t cap)
{
    if (hex_len % 2 != 0 || hex_len / 2 > cap)
        return -1;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = tg_hex_digit(hex[2 * i]), lo = tg_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return (int)(hex_len / 2);
}
