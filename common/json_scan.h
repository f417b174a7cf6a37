/* A small, allocation-free JSON scanner for the hot path: it walks one object's members without
 * building a tree, so a worker can read `model` and `stream` from a request, or the `usage`
 * object from an answer, at the cost of one pass. Values are returned as spans into the input.
 * It checks structure (brackets, strings, literals) but does not decode escapes or numbers
 * beyond what the getters below need. */
#ifndef TG_JSON_SCAN_H
#define TG_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { TG_JSON_NONE = 0, TG_JSON_STRING, TG_JSON_NUMBER, TG_JSON_OBJECT, TG_JSON_ARRAY, TG_JSON_TRUE,
               TG_JSON_FALSE, TG_JSON_NULL } tg_json_type_t;

typedef struct tg_json_span {
    const char *p; /* first byte of the value (for strings: after the opening quote) */
    size_t len;    /* bytes (for strings: between the quotes, still escaped) */
    tg_json_type_t type;
} tg_json_span_t;

/** Finds member KEY in the object that spans [p, p+n) (leading whitespace allowed). Returns 1 and
 * fills *out when found, 0 when absent, -1 when the text is not a well-formed object. The whole
 * object is validated whether or not the key is found, and only whitespace may follow it. */
int tg_json_get(const char *p, size_t n, const char *key, tg_json_span_t *out);
/** Finds the members KEYS[0..N_KEYS) in one pass over the object at [p, p+n): OUT[i] is the first
 * value of KEYS[i], or has type TG_JSON_NONE when absent (keys must differ from each other).
 * Returns how many were found, or -1 when the text is not a well-formed object (as tg_json_get). */
int tg_json_get_many(const char *p, size_t n, const char *const *keys, size_t n_keys, tg_json_span_t *out);
/** The unsigned integer in a NUMBER span: 1 and *out set, or 0 (not a number, negative, fractional,
 * exponent or too large) leaving *out alone. */
int tg_json_span_u64(const tg_json_span_t *v, uint64_t *out);
/** Reads an unsigned integer member (absent or not a number: returns 0 and leaves *out alone). */
int tg_json_get_u64(const char *p, size_t n, const char *key, uint64_t *out);
/** Copies a string value's raw bytes (escapes kept) into buf (cap incl. NUL); -1 if it does not fit. */
int tg_json_span_copy(const tg_json_span_t *s, char *buf, size_t cap);
/** Calls FN for each member of the object, or each element of the array, that spans [p, p+n)
 * (whitespace allowed around it): KEY is the member's name (raw, escapes kept), NULL for array
 * elements. Returns 0 after the last one, -1 when the text is not one well-formed object or array
 * (FN may have been called for the members before the fault), or FN's non-zero return, which stops
 * the walk. */
int tg_json_each(const char *p, size_t n, int (*fn)(void *ud, const tg_json_span_t *key, const tg_json_span_t *val), void *ud);
/** 1 if the span is a complete JSON value of any type ending exactly at its end (for validation). */
int tg_json_validate(const char *p, size_t n);

#endif
