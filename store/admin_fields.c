/* Admin API body validation: provider URLs and owner config values (admin_fields.h). */
#include "store/admin_fields.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "shm/arena-t.h"
#include "store/acct_fields.h"

/* 1 when HOST (no brackets) is loopback, private, link-local, unique-local or unspecified, in any
 * spelling a resolver accepts: a trailing dot ("localhost."), and the IPv4 shorthands inet_aton
 * and curl take (127.1, 0x7f.0.0.1, 2130706433). */
static int host_is_private(const char *host)
{
    char h[256];
    size_t n = strlen(host);
    if (n >= sizeof(h))
        return 0;
    memcpy(h, host, n + 1);
    while (n && h[n - 1] == '.')
        h[--n] = '\0';
    host = h;
    if (strcasecmp(host, "localhost") == 0 || (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0))
        return 1;
    uint8_t a[16];
    struct in_addr a4;
    if (inet_aton(host, &a4) != 0) {
        memcpy(a, &a4.s_addr, 4);
        return a[0] == 127 || a[0] == 10 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
               (a[0] == 169 && a[1] == 254) || (a[0] == 100 && (a[1] & 0xc0) == 64);
    }
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const uint8_t zero[16] = {0};
        if (memcmp(a, zero, 15) == 0 && (a[15] == 1 || a[15] == 0))
            return 1;
        if ((a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
            return 1;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, v4mapped, 12) == 0) {
            char v4[16];
            snprintf(v4, sizeof(v4), "%u.%u.%u.%u", a[12], a[13], a[14], a[15]);
            return host_is_private(v4);
        }
    }
    return 0;
}

int tg_provider_url_valid(const char *url, int allow_private, char *why, size_t cap)
{
    size_t n = strlen(url);
    const char *p;
    if (n >= TG_URL_MAX) {
        snprintf(why, cap, "longer than %d characters", TG_URL_MAX - 1);
        return -1;
    }
    if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else {
        snprintf(why, cap, "must start with http:// or https://");
        return -1;
    }
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '?' || *c == '#' || *c == '@' || *c == '\\' || (unsigned char)*c >= 0x7f) {
            snprintf(why, cap, "must not contain spaces, credentials, a query or a fragment");
            return -1;
        }
    char host[256];
    size_t h = 0;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (e == NULL || (size_t)(e - p - 1) >= sizeof(host)) {
            snprintf(why, cap, "has a malformed IPv6 host");
            return -1;
        }
        h = (size_t)(e - p - 1);
        memcpy(host, p + 1, h);
        p = e + 1;
    } else {
        while (*p && *p != ':' && *p != '/' && h < sizeof(host) - 1)
            host[h++] = *p++;
    }
    host[h] = '\0';
    if (h == 0) {
        snprintf(why, cap, "has no host");
        return -1;
    }
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/')) {
            snprintf(why, cap, "has a bad port");
            return -1;
        }
    } else if (*p && *p != '/') {
        snprintf(why, cap, "has a malformed host");
        return -1;
    }
    if (!allow_private && host_is_private(host)) {
        snprintf(why, cap, "names a loopback or private address (set store.allow_private_providers to allow it)");
        return -1;
    }
    return 0;
}

static const tg_conf_key_t g_config_keys[] = {
    {"MODEL_MAPPER", 'M'}, {"LEVEL_MAPPER", 'L'}, {"SWITCH_OVER", 'S'},  {"RESOURCES", 'R'},     {"MODEL_LIMITS", 'J'},
    {"MODEL_FAILOVER", 'M'}, {"PRICES", 'J'},     {"ALLOW_UNPRICED", 'B'}, {"USER_MIN_BALANCE", 'N'}, {"USER_API_BALANCE", 'N'},
    {"XAI_MAIL", 'T'},     {"EMAIL_SMTP", 'T'},   {"EMAIL_PORT", 'N'},   {"EMAIL_AUTH", 'T'},    {"EMAIL_PASS", 'P'},
    {"EMAIL_SENDER", 'T'}, {"EMAIL_TLS", 'B'},
};

const tg_conf_key_t *tg_conf_key(const char *k)
{
    for (size_t i = 0; i < sizeof(g_config_keys) / sizeof(g_config_keys[0]); i++)
        if (strcmp(g_config_keys[i].key, k) == 0)
            return &g_config_keys[i];
    return NULL;
}

/* PRICES: {"model": {"input": $/M, "output": $/M, "cached": $/M}} */
static int prices_valid(json_t *v, char *why, size_t cap)
{
    const char *model, *k;
    json_t *p, *n;
    json_object_foreach(v, model, p)
    {
        if (!json_is_object(p)) {
            snprintf(why, cap, "%.64s: must be an object {input, output, cached}", model);
            return -1;
        }
        json_object_foreach(p, k, n)
        {
            if ((strcmp(k, "input") && strcmp(k, "output") && strcmp(k, "cached")) || !json_is_number(n) ||
                json_number_value(n) < 0) {
                snprintf(why, cap, "%.64s.%.16s: only input, output and cached, as non-negative numbers (USD per million tokens)",
                         model, k);
                return -1;
            }
        }
    }
    return 0;
}

json_t *tg_conf_value(const tg_conf_key_t *ck, json_t *old, json_t *v, char *why, size_t cap)
{
    switch (ck->kind) {
    case 'M':
    case 'L':
    case 'S':
        if (!json_is_string(v)) {
            snprintf(why, cap, "must be a string of src=dst pairs");
            return NULL;
        }
        if (tg_mapper_valid(ck->kind == 'M' ? 'M' : ck->kind, json_string_value(v), why, cap) != 0)
            return NULL;
        return json_incref(v);
    case 'R': {
        if (!json_is_string(v)) {
            snprintf(why, cap, "must be a string of paths");
            return NULL;
        }
        char *x = tg_acl_edit('R', "", json_string_value(v), why, cap);
        if (x == NULL)
            return NULL;
        json_t *out = json_string(x);
        free(x);
        return out;
    }
    case 'J':
        if (strcmp(ck->key, "PRICES") == 0) {
            json_t *p = json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : json_incref(v);
            if (!json_is_object(p)) {
                json_decref(p);
                snprintf(why, cap, "must be a JSON object {\"model\":{\"input\":N,\"output\":N,\"cached\":N}}");
                return NULL;
            }
            if (prices_valid(p, why, cap) != 0) {
                json_decref(p);
                return NULL;
            }
            json_t *merged = json_is_object(old) ? json_deep_copy(old) : json_object();
            json_object_update(merged, p);
            json_decref(p);
            return merged;
        }
        return tg_model_limits_merge(old, v, why, cap);
    case 'B':
        if (json_is_boolean(v))
            return json_incref(v);
        if (json_is_string(v) && (strcmp(json_string_value(v), "true") == 0 || strcmp(json_string_value(v), "false") == 0))
            return json_boolean(strcmp(json_string_value(v), "true") == 0);
        snprintf(why, cap, "must be true or false");
        return NULL;
    case 'N': {
        double d;
        char *end = NULL;
        if (json_is_number(v))
            d = json_number_value(v);
        else if (json_is_string(v) && *json_string_value(v) && (d = strtod(json_string_value(v), &end), *end == '\0'))
            ;
        else {
            snprintf(why, cap, "must be a number");
            return NULL;
        }
        if (!(d >= 0 && d <= 1e9)) {
            snprintf(why, cap, "must be from 0 to 1e9");
            return NULL;
        }
        return json_real(d);
    }
    default:
        if (!json_is_string(v) || strlen(json_string_value(v)) > 1024) {
            snprintf(why, cap, "must be a string of at most 1024 characters");
            return NULL;
        }
        return json_incref(v);
    }
}
