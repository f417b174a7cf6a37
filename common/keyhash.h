/* API keys: generation in the sk-Xvs format and the SHA-256 digest under which they are indexed and stored. */
#ifndef TG_KEYHASH_H
#define TG_KEYHASH_H

#include <stddef.h>
#include <stdint.h>

#define TG_KEY_LEN 51          /* "sk-Xvs" + 45 characters of [A-Za-z0-9] */
#define TG_KEY_PREFIX "sk-Xvs"
#define TG_KEY_HASH_LEN 32

/** SHA-256 of the key bytes. */
void tg_key_hash(const char *key, size_t len, uint8_t out[TG_KEY_HASH_LEN]);
/** Writes a new random key (TG_KEY_LEN chars + NUL) into out. Returns 0, or -1 if the RNG failed. */
int tg_key_generate(char out[TG_KEY_LEN + 1]);
/** 1 when s (len bytes) has the sk-Xvs form. */
int tg_key_is_valid(const char *s, size_t len);
/** Lowercase hex of n bytes into out (2n+1 bytes). */
void tg_hex(const uint8_t *in, size_t n, char *out);
/** Value of one hex digit (either case), or -1. */
int tg_hex_digit(char c);
/** The reverse of tg_hex: decodes HEX (HEX_LEN chars, even) into OUT (CAP bytes); returns the
 * byte count, or -1 on a bad digit or size. */
int tg_unhex(const char *hex, size_t hex_len, uint8_t *out, size_t cap);

#endif
