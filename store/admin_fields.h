/* Validation of the Admin API's write bodies (api-compat 4.3, 7.12): provider URLs of /x-keys and
 * the owner config keys of /x-config and /x-conf. Pure functions: a refusal comes with a reason
 * naming what is wrong, and nothing passed in is modified. */
#ifndef TG_STORE_ADMIN_FIELDS_H
#define TG_STORE_ADMIN_FIELDS_H

#include <jansson.h>
#include <stddef.h>

/** Validates a provider base URL: http(s)://host[:port][/path], no credentials, query or
 * fragment, and (unless ALLOW_PRIVATE) no loopback or private host. 0, or -1 with WHY. */
int tg_provider_url_valid(const char *url, int allow_private, char *why, size_t cap);

/* An owner config key and the kind of its value: 'M' model mapper, 'L' level mapper, 'S'
 * switch-over, 'R' resources, 'J' JSON object, 'B' bool, 'N' number, 'T' text, 'P' secret text. */
typedef struct tg_conf_key {
    const char *key;
    char kind;
} tg_conf_key_t;

/** The config key named K, or NULL when there is none. */
const tg_conf_key_t *tg_conf_key(const char *k);
/** Normalizes V, a new value of key CK (OLD: its current value, may be NULL; JSON objects are
 * merged into it), into the value to store (new reference), or NULL with WHY. */
json_t *tg_conf_value(const tg_conf_key_t *ck, json_t *old, json_t *v, char *why, size_t cap);

#endif
