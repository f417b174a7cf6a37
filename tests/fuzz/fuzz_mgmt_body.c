/* libFuzzer target: validation of the management write bodies, field by field, through the same
 * functions the handlers call: account fields of POST /x-users and PUT /x-users/{id}
 * (store/acct_fields.h), the provider URL of /x-keys and the keys of /x-config
 * (store/admin_fields.h), then the quota engine's compile check (shm/policy.h, store/txn.h).
 * Input: first byte selects the endpoint (mod 3: 0 account, 1 x-keys, 2 x-config), the rest is
 * the JSON body. Invariants: every refusal comes with a reason; validating a value never changes
 * the current one it is merged into; what the API accepts, the quota engine compiles; an accepted
 * provider URL is well formed and does not name a loopback or private address in any spelling
 * the resolver accepts. */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>

#include "fuzz_ref.h"
#include "shm/arena-t.h"
#include "shm/matcher.h"
#include "shm/policy.h"
#include "store/acct_fields.h"
#include "store/admin_fields.h"
#include "store/txn.h"

/* The account being updated and its parent (lists already normalized, as stored). */
static const char *const g_record = "{\"ID\":42,\"Name\":\"team-a\",\"AllowIPs\":\"10.0.0.0/8,::1\",\"AllowModels\":"
                                    "\"gpt-4o*,claude-*\",\"AllowLevels\":\"1,2\",\"Resources\":\"/v1/chat\",\"ModelMapper\":"
                                    "\"fast=gpt-4o-mini\",\"LevelMapper\":\"gpt-4o*=2\",\"ModelLimits\":{\"gpt-4o\":{\"rpm\":5}}}";
static const char *const g_parent = "{\"ID\":7,\"AllowIPs\":\"10.0.0.0/8,192.168.0.0/16\",\"AllowModels\":\"gpt-*,claude-*\","
                                    "\"AllowLevels\":\"1,2,3,64\",\"Resources\":\"/v1\"}";
static const char *const g_config = "{\"MODEL_MAPPER\":\"gpt4=gpt-4o\",\"LEVEL_MAPPER\":\"gpt-4o*=2\",\"SWITCH_OVER\":\"1=2\","
                                    "\"RESOURCES\":\"/v1\",\"MODEL_LIMITS\":{\"gpt-4o\":{\"rpm\":60}},\"PRICES\":{\"gpt-4o\":"
                                    "{\"input\":2.5,\"output\":10}},\"ALLOW_UNPRICED\":false}";

static const char *str_of(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static const char *or_null(const char *s)
{
    return *s ? s : NULL;
}

/* The account's lists compile (what policy_check of api_manage.c asks before a write). */
static void check_compiles(const json_t *nr, const char *what)
{
    const json_t *ml = json_object_get(nr, "ModelLimits");
    tg_account_src_t src = {or_null(str_of(nr, "AllowIPs")),    or_null(str_of(nr, "AllowModels")),
                            or_null(str_of(nr, "Resources")),   or_null(str_of(nr, "ModelMapper")),
                            or_null(str_of(nr, "LevelMapper")), json_is_object(ml) && json_object_size(ml) ? ml : NULL};
    char *err = NULL;
    int rc = tg_policy_account_check(&src, &err);
    FUZZ_CHECK(rc == 0 || (err && strstr(err, "too long")), "%s was accepted but the lists do not compile: %s", what,
               err ? err : "?");
    free(err);
    uint64_t mask;
    FUZZ_CHECK(tg_levels_parse(or_null(str_of(nr, "AllowLevels")), &mask) == 0,
               "AllowLevels '%s' was accepted but does not compile", str_of(nr, "AllowLevels"));
}

static void account_body(json_t *body)
{
    /* the handlers edit a copy of the record (NR) and store it only when every field is valid */
    json_t *nr = json_loads(g_record, 0, NULL), *parent = json_loads(g_parent, 0, NULL);
    static const struct {
        const char *name;
        char kind;
    } acl[] = {{"AllowIPs", 'I'}, {"AllowModels", 'M'}, {"AllowLevels", 'L'}, {"Resources", 'R'}};
    const char *key;
    json_t *v;
    char why[200];
    json_object_foreach(body, key, v)
    {
        const char *sv = json_string_value(v);
        why[0] = '\0';
        for (size_t i = 0; i < sizeof(acl) / sizeof(acl[0]); i++) {
            if (strcmp(key, acl[i].name) != 0 || !sv || strlen(sv) > 4096)
                continue;
            char *edited = tg_acl_edit(acl[i].kind, str_of(nr, key), sv, why, sizeof(why));
            if (edited == NULL) {
                FUZZ_CHECK(why[0], "%s: a refused edit must say why", key);
                continue;
            }
            char *again = tg_acl_edit(acl[i].kind, "", edited, why, sizeof(why));
            FUZZ_CHECK(!*edited || (again && strcmp(again, edited) == 0), "%s: '%s' is not a normal form ('%s')", key, edited,
                       again ? again : why);
            free(again);
            char *bounded = tg_acl_intersect(acl[i].kind, edited, str_of(parent, key));
            json_object_set_new(nr, key, json_string(bounded));
            free(bounded);
            free(edited);
            check_compiles(nr, key);
        }
        if ((strcmp(key, "ModelMapper") == 0 || strcmp(key, "LevelMapper") == 0) && sv && strlen(sv) <= 4096) {
            if (tg_mapper_valid(key[0], sv, why, sizeof(why)) != 0) {
                FUZZ_CHECK(why[0], "%s: a refused mapper must say why", key);
                continue;
            }
            json_object_set(nr, key, v);
            check_compiles(nr, key);
        }
        if (strcmp(key, "ModelLimits") == 0) {
            json_t *old = json_object_get(nr, key), *old_copy = json_deep_copy(old);
            json_t *merged = tg_model_limits_merge(old, v, why, sizeof(why));
            FUZZ_CHECK(json_equal(old, old_copy), "ModelLimits: merging changed the current value");
            json_decref(old_copy);
            if (merged == NULL) {
                FUZZ_CHECK(why[0], "ModelLimits: a refusal must say why");
                continue;
            }
            json_object_set_new(nr, key, merged);
            check_compiles(nr, key);
        }
        if (strcmp(key, "Name") == 0 && sv && tg_valid_name(sv)) {
            size_t n = strlen(sv);
            FUZZ_CHECK(n >= 4 && n <= 63 && sv[0] != '.', "Name '%s' accepted", sv);
            for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(isalnum((unsigned char)sv[i]) || strchr("_.-", sv[i]), "Name '%s' accepted", sv);
        }
        if (strcmp(key, "Email") == 0 && sv && tg_valid_email(sv)) {
            const char *at = strchr(sv, '@');
            FUZZ_CHECK(at && at != sv && !strchr(at + 1, '@') && strlen(sv) <= 254 && strchr(at + 1, '.'),
                       "Email '%s' accepted", sv);
        }
    }
    json_decref(nr);
    json_decref(parent);
}

/* ---- provider URLs ---- */

/* The host of URL (after the scheme), lowercased, without brackets and trailing dots. */
static int url_host(const char *url, char *host, size_t cap)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    size_t n = 0;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e || (size_t)(e - p - 1) >= cap)
            return 0;
        n = (size_t)(e - p - 1);
        memcpy(host, p + 1, n);
    } else {
        while (p[n] && p[n] != ':' && p[n] != '/' && n < cap - 1)
            n++;
        memcpy(host, p, n);
    }
    host[n] = '\0';
    for (size_t i = 0; i < n; i++)
        host[i] = (char)tolower((unsigned char)host[i]);
    while (n && host[n - 1] == '.')
        host[--n] = '\0';
    return 1;
}

static int v4_private(const uint8_t *a)
{
    return a[0] == 127 || a[0] == 10 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
           (a[0] == 169 && a[1] == 254) || (a[0] == 100 && (a[1] & 0xc0) == 64);
}

/* Loopback or private in any spelling the resolver takes: inet_aton accepts 127.1, 0x7f.1, 2130706433. */
static int ref_private(const char *host)
{
    size_t n = strlen(host);
    if (strcmp(host, "localhost") == 0 || (n > 10 && strcmp(host + n - 10, ".localhost") == 0))
        return 1;
    struct in_addr a4;
    uint8_t a[16];
    if (inet_aton(host, &a4) != 0)
        return v4_private((const uint8_t *)&a4.s_addr);
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const uint8_t zero[15] = {0}, mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return (memcmp(a, zero, 15) == 0 && a[15] <= 1) || (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
               (memcmp(a, mapped, 12) == 0 && v4_private(a + 12));
    }
    return 0;
}

static void check_provider(const char *url)
{
    char why[160] = "", why2[160] = "";
    int ok = tg_provider_url_valid(url, 0, why, sizeof(why)) == 0;
    int ok_private = tg_provider_url_valid(url, 1, why2, sizeof(why2)) == 0;
    FUZZ_CHECK(ok || why[0], "a refused Provider must say why");
    FUZZ_CHECK(!ok || ok_private, "allowing private hosts refused '%s'", url);
    if (!ok_private)
        return;
    FUZZ_CHECK(strlen(url) < TG_URL_MAX && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0),
               "Provider '%s' accepted", url);
    for (const char *c = url; *c; c++)
        FUZZ_CHECK((unsigned char)*c > ' ' && (unsigned char)*c < 0x7f && !strchr("?#@\\", *c), "Provider '%s' accepted", url);
    char host[256];
    FUZZ_CHECK(url_host(url, host, sizeof(host)), "Provider '%s' accepted without a host", url);
    if (ok)
        FUZZ_CHECK(!ref_private(host), "Provider '%s' names a private host (%s)", url, host);
}

static void keys_body(json_t *body)
{
    json_t *v = json_object_get(body, "Provider");
    if (json_is_string(v))
        check_provider(json_string_value(v));
}

/* ---- owner config ---- */

static void config_body(json_t *body)
{
    json_t *conf = json_loads(g_config, 0, NULL); /* the handler's copy of the stored config */
    const char *k;
    json_t *v;
    char why[200];
    json_object_foreach(body, k, v)
    {
        const tg_conf_key_t *ck = tg_conf_key(k);
        if (ck == NULL)
            continue; /* refused as unknown by the handler */
        json_t *old = json_object_get(conf, k), *old_copy = json_deep_copy(old);
        why[0] = '\0';
        json_t *nv = tg_conf_value(ck, old, v, why, sizeof(why));
        FUZZ_CHECK(json_equal(old, old_copy) || (old == NULL && old_copy == NULL), "%s: validating changed the current value", k);
        json_decref(old_copy);
        if (nv == NULL) {
            FUZZ_CHECK(why[0], "%s: a refusal must say why", k);
            continue;
        }
        json_object_set_new(conf, k, nv);
    }
    /* what compiles is decided by the quota engine; the mapper, resources and limit keys the API
     * accepted must pass it (PRICES is checked by the compiler alone) */
    json_object_del(conf, "PRICES");
    char *err = NULL;
    int rc = tg_store_owner_config_check(conf, &err);
    FUZZ_CHECK(rc == 0 || (err && *err), "a refused config must say why");
    FUZZ_CHECK(rc == 0, "owner config keys the API accepted do not compile: %s", err ? err : "?");
    free(err);
    json_decref(conf);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    if (size < 1)
        return 0;
    json_t *body = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
    if (json_is_object(body)) {
        switch (data[0] % 3) {
        case 0: account_body(body); break;
        case 1: keys_body(body); break;
        default: config_body(body); break;
        }
    }
    json_decref(body);
    return 0;
}
