/* Finding finished Assistants runs and their usage in an answer (run_usage.h). */
#include "worker/run_usage.h"

#include <string.h>

#include "common/json_scan.h"

static int span_is(const tg_json_span_t *s, const char *lit)
{
    size_t n = strlen(lit);
    return s->type == TG_JSON_STRING && s->len == n && memcmp(s->p, lit, n) == 0;
}

static int is_terminal(const tg_json_span_t *status)
{
    static const char *const done[] = {"completed", "failed", "cancelled", "expired", "incomplete"};
    for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++)
        if (span_is(status, done[i]))
            return 1;
    return 0;
}

/* A string member copied into BUF (CAP bytes, NUL-terminated); 0, or -1 when absent, not a
 * string, empty, escaped (ids and model names never are) or too long. */
static int get_string(const char *p, size_t n, const char *key, char *buf, size_t cap)
{
    tg_json_span_t v;
    if (tg_json_get(p, n, key, &v) != 1 || v.type != TG_JSON_STRING || v.len == 0 || memchr(v.p, '\\', v.len))
        return -1;
    return tg_json_span_copy(&v, buf, cap);
}

int tg_run_terminal(const char *p, size_t n, tg_run_t *out)
{
    tg_json_span_t obj, status, usage;
    if (tg_json_get(p, n, "object", &obj) != 1 || !span_is(&obj, "thread.run") ||
        tg_json_get(p, n, "status", &status) != 1 || !is_terminal(&status) ||
        tg_json_get(p, n, "usage", &usage) != 1 || usage.type != TG_JSON_OBJECT)
        return 0;
    memset(out, 0, sizeof(*out));
    if (get_string(p, n, "id", out->id, sizeof(out->id)) != 0 || get_string(p, n, "model", out->model, sizeof(out->model)) != 0)
        return 0;
    tg_json_get_u64(usage.p, usage.len, "prompt_tokens", &out->prompt_tokens);
    tg_json_get_u64(usage.p, usage.len, "completion_tokens", &out->completion_tokens);
    return 1;
}

/* The runs of a list answer's `data` array, gathered by tg_json_each. */
typedef struct run_list {
    tg_run_t *out;
    size_t found, max;
} run_list_t;

static int take_item(void *ud, const tg_json_span_t *key, const tg_json_span_t *item)
{
    run_list_t *l = ud;
    (void)key;
    if (item->type == TG_JSON_OBJECT && tg_run_terminal(item->p, item->len, &l->out[l->found]))
        l->found++;
    return l->found == l->max; /* full: stop the walk */
}

size_t tg_run_scan(const char *p, size_t n, tg_run_t *out, size_t max)
{
    tg_json_span_t obj, data;
    if (max == 0 || tg_json_get(p, n, "object", &obj) != 1)
        return 0;
    if (!span_is(&obj, "list"))
        return (size_t)tg_run_terminal(p, n, out);
    if (tg_json_get(p, n, "data", &data) != 1 || data.type != TG_JSON_ARRAY)
        return 0;
    run_list_t l = {out, 0, max};
    tg_json_each(data.p, data.len, take_item, &l);
    return l.found;
}
