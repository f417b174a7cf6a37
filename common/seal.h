/* Sealing provider secrets with AES-256-GCM under the master key, and loading that key.
 * Sealed form: 12-byte random nonce | ciphertext | 16-byte tag. */
#ifndef TG_SEAL_H
#define TG_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define TG_MASTER_KEY_LEN 32
#define TG_SEAL_OVERHEAD 28

/** Loads the master key from $TOLLGATE_MASTER_KEY (64 hex chars) or from FILE (64 hex chars),
 * creating FILE with mode 0600 and a random key when neither exists. 0, or -1 with *err. */
int tg_master_key_load(const char *file, uint8_t key[TG_MASTER_KEY_LEN], char **err);
/** Seals PLAIN (LEN bytes) into OUT (at least LEN + TG_SEAL_OVERHEAD); returns the sealed length or -1. */
int tg_seal(const uint8_t key[TG_MASTER_KEY_LEN], const void *plain, size_t len, uint8_t *out, size_t cap);
/** Opens a sealed blob into OUT (CAP bytes, NUL-terminated); returns the plaintext length or -1
 * when the blob was tampered with or sealed under another key. */
int tg_unseal(const uint8_t key[TG_MASTER_KEY_LEN], const uint8_t *sealed, size_t len, char *out, size_t cap);

#endif
