/* Key encodings, roll-up row codec and small value helpers of the persister's schema (schema.h). */
#include "store/schema.h"

#include <msgpack.h>
#include <string.h>

static const char *const g_cf_names[TG_CF_COUNT] = {
    [TG_CF_DEFAULT] = "default", [TG_CF_ACCOUNTS] = "accounts", [TG_CF_KEYHASH] = "keyhash", [TG_CF_UPSTREAMS] = "upstreams",
    [TG_CF_USAGE] = "usage",     [TG_CF_ROLLUPS] = "rollups",   [TG_CF_META] = "meta",         [TG_CF_LEDGER] = "ledger",
    [TG_CF_AUDIT] = "audit",     [TG_CF_CONFIG] = "config",     [TG_CF_NEWS] = "news",         [TG_CF_NAMES] = "names",
    [TG_CF_TREE] = "tree",
};

const char *tg_cf_name(tg_cf_t cf)
{
    return cf < TG_CF_COUNT ? g_cf_names[cf] : "?";
}

void tg_be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (uint8_t)v;
}

uint64_t tg_be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}

size_t tg_usage_key(uint8_t out[TG_USAGE_KEY_MAX], uint64_t ts_ms, const char *rid, size_t rid_len)
{
    if (rid_len > TG_USAGE_KEY_MAX - 8)
        rid_len = TG_USAGE_KEY_MAX - 8;
    tg_be64_put(out, ts_ms);
    memcpy(out + 8, rid, rid_len);
    return 8 + rid_len;
}

size_t tg_rollup_key(uint8_t out[TG_ROLLUP_KEY_MAX], uint64_t account_id, const char day[TG_DAY_LEN], const char *model,
                     size_t model_len)
{
    if (model_len > TG_ROLLUP_KEY_MAX - 8 - TG_DAY_LEN)
        model_len = TG_ROLLUP_KEY_MAX - 8 - TG_DAY_LEN;
    tg_be64_put(out, account_id);
    memcpy(out + 8, day, TG_DAY_LEN);
    memcpy(out + 8 + TG_DAY_LEN, model, model_len);
    return 8 + TG_DAY_LEN + model_len;
}

void tg_ledger_key(uint8_t out[TG_LEDGER_KEY_LEN], uint64_t account_id, uint64_t seq)
{
    tg_be64_put(out, account_id);
    tg_be64_put(out + 8, seq);
}

void tg_audit_key(uint8_t out[TG_AUDIT_KEY_LEN], uint64_t ts_ms, uint64_t seq)
{
    tg_be64_put(out, ts_ms);
    tg_be64_put(out + 8, seq);
}

void tg_rollup_add(tg_rollup_t *dst, const tg_rollup_t *src)
{
    dst->requests += src->requests;
    dst->prompt += src->prompt;
    dst->completion += src->completion;
    dst->cached += src->cached;
    dst->cost_nanos += src->cost_nanos;
}

/* The roll-up fields by msgpack key; cost_nanos is the only signed one. */
#define ROLLUP_FIELD(name)                                                                                                         \
    {                                                                                                                              \
#name, offsetof(tg_rollup_t, name)                                                                                         \
    }
static const struct {
    const char *name;
    size_t offset;
} g_rollup_fields[] = {ROLLUP_FIELD(requests), ROLLUP_FIELD(prompt), ROLLUP_FIELD(completion), ROLLUP_FIELD(cached),
                       ROLLUP_FIELD(cost_nanos)};
#define N_ROLLUP_FIELDS (sizeof(g_rollup_fields) / sizeof(g_rollup_fields[0]))

typedef struct fixed_out {
    uint8_t *p;
    size_t len, cap;
} fixed_out_t;

static int fixed_write(void *data, const char *buf, size_t len)
{
    fixed_out_t *o = data;
    if (o->len + len > o->cap) {
        o->cap = 0; /* marks overflow */
        return -1;
    }
    memcpy(o->p + o->len, buf, len);
    o->len += len;
    return 0;
}

int tg_rollup_encode(const tg_rollup_t *r, uint8_t *buf, size_t cap)
{
    fixed_out_t o = {buf, 0, cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &o, fixed_write);
    msgpack_pack_map(&pk, N_ROLLUP_FIELDS);
    for (size_t i = 0; i < N_ROLLUP_FIELDS; i++) {
        size_t n = strlen(g_rollup_fields[i].name);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, g_rollup_fields[i].name, n);
        int64_t v;
        memcpy(&v, (const char *)r + g_rollup_fields[i].offset, sizeof(v));
        msgpack_pack_int64(&pk, v);
    }
    return o.cap == 0 ? -1 : (int)o.len;
}

int tg_rollup_decode(const uint8_t *buf, size_t len, tg_rollup_t *out)
{
    memset(out, 0, sizeof(*out));
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS || up.data.type != MSGPACK_OBJECT_MAP)
        goto done;
    for (uint32_t i = 0; i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key, *v = &up.data.via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            goto done;
        for (size_t f = 0; f < N_ROLLUP_FIELDS; f++) {
            const char *name = g_rollup_fields[f].name;
            if (k->via.str.size != strlen(name) || memcmp(k->via.str.ptr, name, k->via.str.size) != 0)
                continue;
            int64_t x;
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                x = (int64_t)v->via.u64;
            else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                x = v->via.i64;
            else
                goto done;
            memcpy((char *)out + g_rollup_fields[f].offset, &x, sizeof(x));
        }
    }
    rc = 0;
done:
    msgpack_unpacked_destroy(&up);
    return rc;
}

void tg_rfc3339(time_t t, char out[21])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int tg_rfc3339_parse(const char *s, time_t *out)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (p == NULL)
        return -1;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    long off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && p[1] && p[2] && p[3] == ':' && p[4] && p[5]) {
        int sign = *p == '-' ? -1 : 1;
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
            return -1;
        off = sign * (hh * 3600L + mm * 60L);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    *out = timegm(&tm) - off;
    return 0;
}

const char *tg_day_of(tg_day_cache_t *c, uint64_t ts_ms)
{
    int64_t ms = (int64_t)ts_ms;
    if (c->end_ms != 0 && ms >= c->start_ms && ms < c->end_ms)
        return c->day;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(c->day, sizeof(c->day), "%Y-%m-%d", &tm);
    /* The day's bounds: local midnight of this day and of the next (mktime copes with DST). */
    struct tm mid = tm;
    mid.tm_hour = mid.tm_min = mid.tm_sec = 0;
    mid.tm_isdst = -1;
    time_t start = mktime(&mid);
    mid = tm;
    mid.tm_mday += 1;
    mid.tm_hour = mid.tm_min = mid.tm_sec = 0;
    mid.tm_isdst = -1;
    time_t end = mktime(&mid);
    if (start == (time_t)-1 || end == (time_t)-1 || end <= start) {
        c->end_ms = 0; /* no cache: recompute next time */
    } else {
        c->start_ms = (int64_t)start * 1000;
        c->end_ms = (int64_t)end * 1000;
    }
    return c->day;
}
