/* Helpers shared by the libFuzzer targets of tests/fuzz: splitting an input into NUL-terminated
 * lines, naive reference implementations to compare the real parsers against, and a check that
 * fails loudly. Header-only (static functions) so each target stays one executable. */
#ifndef TG_FUZZ_REF_H
#define TG_FUZZ_REF_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Aborts with a message naming the broken invariant (libFuzzer keeps the input). */
#define FUZZ_CHECK(cond, ...)                                                                                    \
    do {                                                                                                         \
        if (!(cond)) {                                                                                           \
            fprintf(stderr, "invariant broken: %s: ", #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                                                        \
            fputc('\n', stderr);                                                                                 \
            abort();                                                                                             \
        }                                                                                                        \
    } while (0)

#define FUZZ_MAX_LINES 64

/* The input cut at '\n' into at most FUZZ_MAX_LINES NUL-terminated lines (a NUL inside a line ends
 * it, as it would end a C string). Lines past the input are "". Free with lines_free. */
typedef struct fuzz_lines {
    char *buf;
    char *line[FUZZ_MAX_LINES];
    size_t n; /* lines present in the input */
} fuzz_lines_t;

static inline void lines_split(fuzz_lines_t *l, const unsigned char *data, size_t size)
{
    l->buf = malloc(size + 1);
    memcpy(l->buf, data, size);
    l->buf[size] = '\0';
    l->n = 0;
    char *p = l->buf, *end = l->buf + size;
    while (l->n < FUZZ_MAX_LINES && p <= end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl)
            *nl = '\0';
        l->line[l->n++] = p;
        if (!nl)
            break;
        p = nl + 1;
    }
    for (size_t i = l->n; i < FUZZ_MAX_LINES; i++)
        l->line[i] = l->buf + size;
}

static inline void lines_free(fuzz_lines_t *l)
{
    free(l->buf);
}

/* Reference wildcard match ('*' matches any run, possibly empty): the textbook dynamic program,
 * row by row over the pattern; m[j] says whether the pattern so far matches s[0..j). */
static inline int ref_glob(const char *p, size_t pn, const char *s, size_t sn)
{
    unsigned char *m = calloc(sn + 1, 1);
    m[0] = 1;
    for (size_t i = 0; i < pn; i++) {
        if (p[i] == '*') {
            for (size_t j = 1; j <= sn; j++)
                m[j] = m[j] || m[j - 1];
        } else {
            for (size_t j = sn; j >= 1; j--)
                m[j] = m[j - 1] && s[j - 1] == p[i];
            m[0] = 0;
        }
    }
    int r = m[sn];
    free(m);
    return r;
}

/* Reference list splitting: items separated by commas and whitespace. Calls FN(item, len, UD). */
static inline int ref_is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline void ref_items(const char *s, void (*fn)(const char *, size_t, void *), void *ud)
{
    size_t i = 0, n = strlen(s);
    while (i < n) {
        while (i < n && ref_is_sep(s[i]))
            i++;
        size_t b = i;
        while (i < n && !ref_is_sep(s[i]))
            i++;
        if (i > b)
            fn(s + b, i - b, ud);
    }
}

#endif
