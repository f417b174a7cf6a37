/* msgpack encoding of usage records into a fixed buffer (no allocation on the hot path). */
#include "shm/usage.h"

#include <msgpack.h>
#include <string.h>

typedef struct fixed_buf {
    uint8_t *p;
    size_t len, cap;
    int overflow;
} fixed_buf_t;

static int fixed_write(void *data, const char *buf, size_t len)
{
    fixed_buf_t *fb = data;
    if (fb->len + len > fb->cap) {
        fb->overflow = 1;
        return -1;
    }
    memcpy(fb->p + fb->len, buf, len);
    fb->len += len;
    return 0;
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, k, n);
}

static void pack_str(msgpack_packer *pk, const char *k, const char *v, size_t cap)
{
    pack_key(pk, k);
    size_t n = strnlen(v, cap);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, v, n);
}

static void pack_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    pack_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

int tg_usage_encode(const tg_usage_t *u, uint8_t *buf, size_t cap)
{
    fixed_buf_t fb = {buf, 0, cap, 0};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fb, fixed_write);
    msgpack_pack_map(&pk, u->run_id[0] ? 16 : 15); /* "run" only when set: other records keep their bytes */
    pack_str(&pk, "rid", u->request_id, sizeof(u->request_id));
    pack_u64(&pk, "ts", u->ts_ms);
    pack_u64(&pk, "acct", u->account_id);
    pack_u64(&pk, "key", u->upstream_id);
    pack_str(&pk, "model", u->model, sizeof(u->model));
    pack_str(&pk, "path", u->path, sizeof(u->path));
    pack_u64(&pk, "st", u->status);
    pack_u64(&pk, "fl", u->flags);
    pack_u64(&pk, "pt", u->prompt_tokens);
    pack_u64(&pk, "ct", u->completion_tokens);
    pack_u64(&pk, "cached", u->cached_tokens);
    pack_key(&pk, "cost");
    msgpack_pack_int64(&pk, u->cost_nanos);
    pack_u64(&pk, "lat", u->latency_ms);
    pack_u64(&pk, "ttfb", u->ttfb_ms);
    pack_u64(&pk, "v", 1);
    if (u->run_id[0])
        pack_str(&pk, "run", u->run_id, sizeof(u->run_id));
    return fb.overflow ? -1 : (int)fb.len;
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

static void copy_str(char *dst, size_t cap, const msgpack_object *v)
{
    size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
    memcpy(dst, v->via.str.ptr, n);
    dst[n] = '\0';
}

/* Field table: where each msgpack key lands in tg_usage_t. */
typedef enum { F_STR, F_U64, F_U32, F_I64 } field_kind_t;
typedef struct {
    const char *key;
    field_kind_t kind;
    size_t offset, size;
} field_t;

#define FIELD(k, kind, member) {k, kind, offsetof(tg_usage_t, member), sizeof(((tg_usage_t *)0)->member)}
static const field_t g_fields[] = {
    FIELD("rid", F_STR, request_id), FIELD("ts", F_U64, ts_ms),           FIELD("acct", F_U64, account_id),
    FIELD("key", F_U64, upstream_id), FIELD("model", F_STR, model),        FIELD("path", F_STR, path),
    FIELD("st", F_U32, status),       FIELD("fl", F_U32, flags),           FIELD("pt", F_U64, prompt_tokens),
    FIELD("ct", F_U64, completion_tokens), FIELD("cached", F_U64, cached_tokens), FIELD("cost", F_I64, cost_nanos),
    FIELD("lat", F_U32, latency_ms),  FIELD("ttfb", F_U32, ttfb_ms),         FIELD("run", F_STR, run_id),
};

static int set_field(tg_usage_t *out, const field_t *f, const msgpack_object *v)
{
    char *dst = (char *)out + f->offset;
    if (f->kind == F_STR) {
        if (v->type != MSGPACK_OBJECT_STR)
            return -1;
        copy_str(dst, f->size, v);
        return 0;
    }
    int64_t x;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        x = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        x = v->via.i64;
    else
        return -1;
    if (f->kind == F_U32) {
        uint32_t y = (uint32_t)x;
        memcpy(dst, &y, sizeof(y));
    } else {
        memcpy(dst, &x, sizeof(x));
    }
    return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Walks one msgpack value at *pos without allocating and checks every declared length and count
 * against the bytes that remain, so that msgpack_unpack_next never sizes an allocation from a
 * count the buffer cannot hold. 0 when the whole value fits, -1 otherwise. */
static int plausible(const uint8_t *p, size_t n)
{
    size_t pos = 0;
    uint64_t pending = 1; /* values still to walk */
    while (pending) {
        if (pos >= n)
            return -1;
        uint8_t t = p[pos++];
        pending--;
        uint64_t skip = 0, items = 0;
        int hdr = 0, count = 0;
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
            ; /* fixint, nil, bool */
        else if ((t & 0xe0) == 0xa0)
            skip = t & 0x1f; /* fixstr */
        else if ((t & 0xf0) == 0x90)
            items = t & 0x0f; /* fixarray */
        else if ((t & 0xf0) == 0x80)
            items = 2u * (t & 0x0f); /* fixmap */
        else
            switch (t) {
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xca: case 0xce: case 0xd2: skip = 4; break;
            case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xc4: case 0xd9: hdr = 1; break;
            case 0xc5: case 0xda: hdr = 2; break;
            case 0xc6: case 0xdb: hdr = 4; break;
            case 0xc7: hdr = 1; skip = 1; break; /* ext 8: length + type */
            case 0xc8: hdr = 2; skip = 1; break;
            case 0xc9: hdr = 4; skip = 1; break;
            case 0xdc: case 0xde: count = 2; break; /* array 16, map 16 */
            case 0xdd: case 0xdf: count = 4; break; /* array 32, map 32 */
            default: return -1; /* 0xc1: never used */
            }
        if (count) { /* a 16- or 32-bit element count; maps hold two values per element */
            if (pos + (size_t)count > n)
                return -1;
            items = be(p + pos, count) * (t == 0xde || t == 0xdf ? 2u : 1u);
            pos += (size_t)count;
        }
        if (hdr) {
            if (pos + (size_t)hdr > n)
                return -1;
            skip += be(p + pos, hdr);
            pos += (size_t)hdr;
        }
        if (skip > n - pos || items > n - pos) /* every item takes at least one byte */
            return -1;
        pos += skip;
        pending += items;
    }
    return 0;
}

int tg_usage_decode(const uint8_t *buf, size_t len, tg_usage_t *out)
{
    if (plausible(buf, len) != 0) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = -1;
    memset(out, 0, sizeof(*out));
    if (msgpack_unpack_next(&up, (const char *)buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        goto done;
    if (up.data.type != MSGPACK_OBJECT_MAP)
        goto done;
    int have_rid = 0;
    for (uint32_t i = 0; i < up.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
        for (size_t f = 0; f < sizeof(g_fields) / sizeof(g_fields[0]); f++) {
            if (!key_is(&kv->key, g_fields[f].key))
                continue;
            if (set_field(out, &g_fields[f], &kv->val) != 0)
                goto done;
            if (f == 0)
                have_rid = 1;
        }
    }
    rc = have_rid && out->request_id[0] ? 0 : -1;
done:
    msgpack_unpacked_destroy(&up);
    return rc;
}
