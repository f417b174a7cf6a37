/* json.c - just enough JSON for the mock: a validating scanner for top-level object members, and an output buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define MJ_MAX_DEPTH 64

typedef struct scanner {
    const char *p, *end;
    int depth;
} scanner_t;

static void skip_ws(scanner_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        ++s->p;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* at the opening quote; leaves p after the closing quote */
static int scan_string(scanner_t *s, mj_value_t *out)
{
    const char *start = ++s->p;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            *out = (mj_value_t){MJ_STRING, start, (size_t)(s->p - start)};
            ++s->p;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (++s->p >= s->end)
                return -1;
            if (*s->p == 'u') {
                if (s->end - s->p < 5 || !is_hex(s->p[1]) || !is_hex(s->p[2]) || !is_hex(s->p[3]) || !is_hex(s->p[4]))
                    return -1;
                s->p += 4;
            } else if (strchr("\"\\/bfnrt", *s->p) == NULL) {
                return -1;
            }
        }
        ++s->p;
    }
    return -1;
}

static int scan_digits(scanner_t *s)
{
    const char *start = s->p;
    while (s->p < s->end && is_digit(*s->p))
        ++s->p;
    return s->p > start ? 0 : -1;
}

static int scan_number(scanner_t *s, mj_value_t *out)
{
    const char *start = s->p;
    if (*s->p == '-')
        ++s->p;
    if (s->p < s->end && *s->p == '0')
        ++s->p;
    else if (scan_digits(s) != 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        ++s->p;
        if (scan_digits(s) != 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        ++s->p;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            ++s->p;
        if (scan_digits(s) != 0)
            return -1;
    }
    *out = (mj_value_t){MJ_NUMBER, start, (size_t)(s->p - start)};
    return 0;
}

static int scan_literal(scanner_t *s, const char *word, mj_type_t type, mj_value_t *out)
{
    size_t len = strlen(word);
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
        return -1;
    *out = (mj_value_t){type, s->p, len};
    s->p += len;
    return 0;
}

static int scan_value(scanner_t *s, mj_value_t *out);

/* scans an object or array, calling fn for object members when given; p is at the opening bracket */
static int scan_container(scanner_t *s, mj_value_t *out, mj_member_fn fn, void *ctx)
{
    const char *start = s->p;
    char close = *s->p == '{' ? '}' : ']';
    mj_value_t key, value;

    if (++s->depth > MJ_MAX_DEPTH)
        return -1;
    ++s->p;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        ++s->p;
    } else {
        for (;;) {
            if (close == '}') {
                if (s->p >= s->end || *s->p != '"' || scan_string(s, &key) != 0)
                    return -1;
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':')
                    return -1;
                ++s->p;
            }
            if (scan_value(s, &value) != 0)
                return -1;
            if (fn != NULL)
                fn(ctx, h2o_iovec_init(key.base, key.len), &value);
            skip_ws(s);
            if (s->p >= s->end)
                return -1;
            if (*s->p == close) {
                ++s->p;
                break;
            }
            if (*s->p != ',')
                return -1;
            ++s->p;
            skip_ws(s);
        }
    }
    --s->depth;
    *out = (mj_value_t){close == '}' ? MJ_OBJECT : MJ_ARRAY, start, (size_t)(s->p - start)};
    return 0;
}

static int scan_value(scanner_t *s, mj_value_t *out)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"':
        return scan_string(s, out);
    case '{':
    case '[':
        return scan_container(s, out, NULL, NULL);
    case 't':
        return scan_literal(s, "true", MJ_TRUE, out);
    case 'f':
        return scan_literal(s, "false", MJ_FALSE, out);
    case 'n':
        return scan_literal(s, "null", MJ_NULL, out);
    default:
        return scan_number(s, out);
    }
}

int mj_each_member(const char *json, size_t len, mj_member_fn fn, void *ctx)
{
    scanner_t s = {json, json + len, 0};
    mj_value_t object;

    if (json == NULL)
        return -1;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || scan_container(&s, &object, fn, ctx) != 0)
        return -1;
    skip_ws(&s);
    return s.p == s.end ? 0 : -1;
}

int mj_key_is(h2o_iovec_t key, const char *name)
{
    return h2o_memis(key.base, key.len, name, strlen(name));
}

int mj_int(const mj_value_t *value, int64_t *out)
{
    int64_t n = 0;
    size_t i = 0;
    int negative = 0;

    if (value->type != MJ_NUMBER)
        return -1;
    if (value->base[0] == '-') {
        negative = 1;
        i = 1;
    }
    for (; i < value->len; ++i) {
        if (!is_digit(value->base[i]) || n > (INT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (value->base[i] - '0');
    }
    *out = negative ? -n : n;
    return 0;
}

static unsigned hex_value(const char *p)
{
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

char *mj_strdup(const mj_value_t *value, size_t *out_len)
{
    char *dst, *out;
    const char *src = value->base, *end = value->base + value->len;

    if (value->type != MJ_STRING || (out = malloc(value->len + 1)) == NULL)
        return NULL;
    for (dst = out; src < end; ++src) {
        if (*src != '\\') {
            *dst++ = *src;
            continue;
        }
        switch (*++src) {
        case 'b': *dst++ = '\b'; break;
        case 'f': *dst++ = '\f'; break;
        case 'n': *dst++ = '\n'; break;
        case 'r': *dst++ = '\r'; break;
        case 't': *dst++ = '\t'; break;
        case 'u': { /* BMP code point to UTF-8 (a \uXXXX escape is 6 bytes, its UTF-8 at most 3) */
            unsigned cp = hex_value(src + 1);
            src += 4;
            if (cp < 0x80) {
                *dst++ = (char)cp;
            } else if (cp < 0x800) {
                *dst++ = (char)(0xc0 | (cp >> 6));
                *dst++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *dst++ = (char)(0xe0 | (cp >> 12));
                *dst++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *dst++ = (char)(0x80 | (cp & 0x3f));
            }
        } break;
        default: *dst++ = *src; break; /* \" \\ \/ */
        }
    }
    *dst = '\0';
    *out_len = (size_t)(dst - out);
    return out;
}

static void reserve(mj_buf_t *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap)
        return;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra + 1)
        cap *= 2;
    if ((buf->base = realloc(buf->base, cap)) == NULL) {
        perror("realloc");
        abort();
    }
    buf->cap = cap;
}

void mj_append(mj_buf_t *buf, const char *s, size_t len)
{
    reserve(buf, len);
    memcpy(buf->base + buf->len, s, len);
    buf->len += len;
    buf->base[buf->len] = '\0';
}

void mj_printf(mj_buf_t *buf, const char *fmt, ...)
{
    va_list args;
    int n;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0)
        return;
    reserve(buf, (size_t)n);
    va_start(args, fmt);
    vsnprintf(buf->base + buf->len, (size_t)n + 1, fmt, args);
    va_end(args);
    buf->len += (size_t)n;
}

void mj_string(mj_buf_t *buf, const char *s, size_t len, int is_json)
{
    mj_append(buf, "\"", 1);
    if (is_json) {
        mj_append(buf, s, len);
    } else {
        for (size_t i = 0; i < len; ++i) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\')
                mj_printf(buf, "\\%c", c);
            else if (c < 0x20 || c == 0x7f)
                mj_printf(buf, "\\u%04x", c);
            else
                mj_append(buf, s + i, 1);
        }
    }
    mj_append(buf, "\"", 1);
}

void mj_free(mj_buf_t *buf)
{
    free(buf->base);
    *buf = (mj_buf_t){NULL, 0, 0};
}

h2o_iovec_t mj_pool_printf(h2o_mem_pool_t *pool, const char *fmt, ...)
{
    va_list args;
    int n;
    char *p;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0)
        return h2o_iovec_init(H2O_STRLIT(""));
    p = h2o_mem_alloc_pool(pool, (size_t)n + 1);
    va_start(args, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, args);
    va_end(args);
    return h2o_iovec_init(p, (size_t)n);
}
