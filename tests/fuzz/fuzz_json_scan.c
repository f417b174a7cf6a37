/* libFuzzer target: the allocation-free JSON scanner (common/json_scan.h).
 * Input: first byte picks a key length k (0..15), the next k bytes are the key, the rest the text. */
#include "common/json_scan.h"
#include <stdlib.h>
#include <string.h>

/* Checks every member or element tg_json_each reports; counts them in *UD. */
static const char *g_text, *g_end;
static int each_fn(void *ud, const tg_json_span_t *key, const tg_json_span_t *val)
{
    if (val->p < g_text || val->p + val->len > g_end || (key && (key->p < g_text || key->p + key->len > g_end)))
        abort(); /* spans lie inside the input */
    if (val->type != TG_JSON_STRING && !tg_json_validate(val->p, val->len))
        abort(); /* a member's value is a complete JSON value */
    return ++*(int *)ud == 1000; /* stops a long walk early sometimes: the return value is passed on */
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char key[16], buf[64];
    size_t k;
    tg_json_span_t sp;
    uint64_t u = 0;

    if (size < 1)
        return 0;
    k = data[0] & 15;
    if (k > size - 1)
        k = size - 1;
    memcpy(key, data + 1, k);
    key[k] = 0;
    /* a private heap copy so ASan sees any read past the end */
    size_t n = size - 1 - k;
    char *p = malloc(n ? n : 1);
    memcpy(p, data + 1 + k, n);

    int v = tg_json_validate(p, n);
    static const char *keys[] = {"model", "stream", "usage", "prompt_tokens", "choices", ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int r = tg_json_get(p, n, keys[i], &sp);
        if (r == 1) {
            if (sp.p < p || sp.p + sp.len > p + n)
                abort(); /* a span must lie inside the input */
            tg_json_span_copy(&sp, buf, sizeof buf);
            if (v != 1 && sp.type != TG_JSON_NONE) {
                /* a found member means the whole object was validated */
            }
        }
        tg_json_get_u64(p, n, keys[i], &u);
    }
    int calls = 0;
    g_text = p;
    g_end = p + n;
    int e = tg_json_each(p, n, each_fn, &calls);
    if (e == 0 && v != 1)
        abort(); /* a complete walk means the text is one well-formed object or array */
    if (e == 1 && calls != 1000)
        abort();
    if (tg_json_get(p, n, key, &sp) == 1) {
        if (sp.p < p || sp.p + sp.len > p + n)
            abort();
        tg_json_span_copy(&sp, buf, sizeof buf);
        tg_json_validate(sp.p, sp.len);
    }
    free(p);
    return 0;
}
