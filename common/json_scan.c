/* Allocation-free JSON scanning; see json_scan.h. Depth is bounded to keep hostile input cheap. */
#include "common/json_scan.h"

#include <string.h>

#define MAX_DEPTH 128

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* Positioned on the opening quote; leaves c->p after the closing quote. */
static int scan_string(cursor_t *c, tg_json_span_t *out)
{
    const char *start = ++c->p;
    while (c->p < c->end) {
        char ch = *c->p;
        if (ch == '"') {
            if (out) {
                out->p = start;
                out->len = (size_t)(c->p - start);
                out->type = TG_JSON_STRING;
            }
            c->p++;
            return 0;
        }
        if (ch == '\\') {
            if (c->p + 1 >= c->end)
                return -1;
            c->p += 2;
            continue;
        }
        if ((unsigned char)ch < 0x20)
            return -1;
        c->p++;
    }
    return -1;
}

static int scan_literal(cursor_t *c, const char *word, tg_json_type_t type, tg_json_span_t *out)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return -1;
    if (out) {
        out->p = c->p;
        out->len = n;
        out->type = type;
    }
    c->p += n;
    return 0;
}

static int digits(cursor_t *c)
{
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

/* JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(cursor_t *c, tg_json_span_t *out)
{
    const char *start = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!digits(c))
        return -1;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return -1;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return -1;
    }
    if (out) {
        out->p = start;
        out->len = (size_t)(c->p - start);
        out->type = TG_JSON_NUMBER;
    }
    return 0;
}

static int scan_value(cursor_t *c, tg_json_span_t *out, int depth);

/* Scans an object or array body starting at the opening bracket. */
static int scan_container(cursor_t *c, tg_json_span_t *out, int depth)
{
    if (depth > MAX_DEPTH)
        return -1;
    const char *start = c->p;
    char close = *c->p == '{' ? '}' : ']';
    int is_obj = close == '}';
    c->p++;
    skip_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        goto done;
    }
    for (;;) {
        skip_ws(c);
        if (is_obj) {
            if (c->p >= c->end || *c->p != '"' || scan_string(c, NULL) != 0)
                return -1;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return -1;
            c->p++;
        }
        if (scan_value(c, NULL, depth + 1) != 0)
            return -1;
        skip_ws(c);
        if (c->p >= c->end)
            return -1;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == close) {
            c->p++;
            break;
        }
        return -1;
    }
done:
    if (out) {
        out->p = start;
        out->len = (size_t)(c->p - start);
        out->type = is_obj ? TG_JSON_OBJECT : TG_JSON_ARRAY;
    }
    return 0;
}

static int scan_value(cursor_t *c, tg_json_span_t *out, int depth)
{
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    switch (*c->p) {
    case '"': return scan_string(c, out);
    case '{':
    case '[': return scan_container(c, out, depth);
    case 't': return scan_literal(c, "true", TG_JSON_TRUE, out);
    case 'f': return scan_literal(c, "false", TG_JSON_FALSE, out);
    case 'n': return scan_literal(c, "null", TG_JSON_NULL, out);
    default: return scan_number(c, out);
    }
}

/* tg_json_get_many's walk: each member's name against the keys not found yet. */
typedef struct get_many {
    const char *const *keys;
    size_t n_keys;
    tg_json_span_t *out;
    int found;
} get_many_t;

static int get_many_member(void *ud, const tg_json_span_t *k, const tg_json_span_t *v)
{
    get_many_t *g = ud;
    for (size_t i = 0; i < g->n_keys; i++)
        if (g->out[i].type == TG_JSON_NONE && k->len == strlen(g->keys[i]) && memcmp(k->p, g->keys[i], k->len) == 0) {
            g->out[i] = *v; /* the first occurrence counts */
            g->found++;
            break;
        }
    return 0;
}

int tg_json_get_many(const char *p, size_t n, const char *const *keys, size_t n_keys, tg_json_span_t *out)
{
    for (size_t i = 0; i < n_keys; i++)
        out[i].type = TG_JSON_NONE;
    cursor_t c = {p, p + n};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') /* an object, not an array */
        return -1;
    get_many_t g = {keys, n_keys, out, 0};
    return tg_json_each(p, n, get_many_member, &g) == 0 ? g.found : -1;
}

int tg_json_get(const char *p, size_t n, const char *key, tg_json_span_t *out)
{
    tg_json_span_t v;
    int rc = tg_json_get_many(p, n, &key, 1, &v);
    if (rc == 1 && out)
        *out = v;
    return rc;
}

int tg_json_span_u64(const tg_json_span_t *v, uint64_t *out)
{
    if (v->type != TG_JSON_NUMBER)
        return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < v->len; i++) {
        char ch = v->p[i];
        if (ch < '0' || ch > '9' || x > (UINT64_MAX - (uint64_t)(ch - '0')) / 10)
            return 0; /* negative, fractional, exponent or too large: not an unsigned integer */
        x = x * 10 + (uint64_t)(ch - '0');
    }
    *out = x;
    return 1;
}

int tg_json_get_u64(const char *p, size_t n, const char *key, uint64_t *out)
{
    tg_json_span_t v;
    if (tg_json_get(p, n, key, &v) != 1)
        return 0;
    return tg_json_span_u64(&v, out);
}

int tg_json_span_copy(const tg_json_span_t *s, char *buf, size_t cap)
{
    if (s->len + 1 > cap)
        return -1;
    memcpy(buf, s->p, s->len);
    buf[s->len] = '\0';
    return 0;
}

int tg_json_each(const char *p, size_t n, int (*fn)(void *ud, const tg_json_span_t *key, const tg_json_span_t *val), void *ud)
{
    cursor_t c = {p, p + n};
    skip_ws(&c);
    if (c.p >= c.end || (*c.p != '{' && *c.p != '['))
        return -1;
    char close = *c.p == '{' ? '}' : ']';
    int is_obj = close == '}';
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == close) {
        c.p++;
        skip_ws(&c);
        return c.p == c.end ? 0 : -1;
    }
    for (;;) {
        tg_json_span_t k, v;
        skip_ws(&c);
        if (is_obj) {
            if (c.p >= c.end || *c.p != '"' || scan_string(&c, &k) != 0)
                return -1;
            skip_ws(&c);
            if (c.p >= c.end || *c.p != ':')
                return -1;
            c.p++;
        }
        if (scan_value(&c, &v, 1) != 0)
            return -1;
        int rc = fn(ud, is_obj ? &k : NULL, &v);
        if (rc != 0)
            return rc;
        skip_ws(&c);
        if (c.p >= c.end)
            return -1;
        if (*c.p == ',') {
            c.p++;
            continue;
        }
        if (*c.p == close) {
            c.p++;
            skip_ws(&c);
            return c.p == c.end ? 0 : -1;
        }
        return -1;
    }
}

int tg_json_validate(const char *p, size_t n)
{
    cursor_t c = {p, p + n};
    if (scan_value(&c, NULL, 0) != 0)
        return 0;
    skip_ws(&c);
    return c.p == c.end;
}
