/* Small append helpers for hot paths: write a number, a string or an IPv4 address at a position
 * and return the position after it, instead of parsing a printf format every request. The
 * caller sizes the buffer: each helper states the most it writes. Only tg_copy_cut adds a NUL. */
#ifndef TG_PUT_H
#define TG_PUT_H

#include <stdint.h>
#include <string.h>

/** Decimal digits of V (at most 20 bytes). */
static inline char *tg_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/** V as exactly WIDTH digits, zero-padded (WIDTH <= 20; higher digits are dropped). */
static inline char *tg_put_u64_pad(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--, v /= 10)
        p[i] = (char)('0' + v % 10);
    return p + width;
}

/** V as exactly WIDTH lower-case hex digits, zero-padded (WIDTH <= 16; higher digits are dropped). */
static inline char *tg_put_hex_pad(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--, v >>= 4)
        p[i] = "0123456789abcdef"[v & 15];
    return p + width;
}

/** The bytes of S (without its NUL). */
static inline char *tg_put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/** LEN bytes at S. */
static inline char *tg_put_mem(char *p, const void *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

/** MS as "250ms", "1.5s", "6m0s", "1h2m3s" (the shape OpenAI's reset headers use; at most 30 bytes). */
static inline char *tg_put_duration_ms(char *p, uint64_t ms)
{
    if (ms < 1000) {
        p = tg_put_u64(p, ms);
        return tg_put_mem(p, "ms", 2);
    }
    if (ms < 60000) {
        p = tg_put_u64(p, ms / 1000);
        if (ms % 1000) {
            *p++ = '.';
            p = tg_put_u64_pad(p, ms % 1000, 3);
        }
        *p++ = 's';
        return p;
    }
    if (ms >= 3600000) {
        p = tg_put_u64(p, ms / 3600000);
        *p++ = 'h';
    }
    p = tg_put_u64(p, ms % 3600000 / 60000);
    *p++ = 'm';
    p = tg_put_u64(p, ms % 60000 / 1000);
    *p++ = 's';
    return p;
}

/** Copies LEN bytes at S into DST of CAP bytes (CAP > 0), cut to CAP - 1, and ends it with a NUL. */
static inline void tg_copy_cut(char *dst, size_t cap, const char *s, size_t len)
{
    if (len > cap - 1)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/** Dotted-quad form of the 4 address bytes at A, network order (at most 15 bytes). */
static inline char *tg_put_ipv4(char *p, const uint8_t a[4])
{
    for (int i = 0; i < 4; i++) {
        if (i)
            *p++ = '.';
        p = tg_put_u64(p, a[i]);
    }
    return p;
}

#endif
