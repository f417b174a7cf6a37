/* libFuzzer target: the usage-record decoder (shm/usage.h). A decoded record must re-encode and
 * decode to the same fields. */
#include "shm/usage.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    tg_usage_t u, v;
    uint8_t buf[2048];
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    memset(&u, 0xA5, sizeof u);
    if (tg_usage_decode(copy, size, &u) == 0) {
        if (memchr(u.request_id, 0, sizeof u.request_id) == NULL || memchr(u.model, 0, sizeof u.model) == NULL ||
            memchr(u.path, 0, sizeof u.path) == NULL)
            abort(); /* strings must come out NUL-terminated */
        int n = tg_usage_encode(&u, buf, sizeof buf);
        if (n < 0)
            abort();
        memset(&v, 0, sizeof v);
        if (tg_usage_decode(buf, (size_t)n, &v) != 0)
            abort();
        if (strcmp(u.request_id, v.request_id) || strcmp(u.model, v.model) || strcmp(u.path, v.path) ||
            u.ts_ms != v.ts_ms || u.account_id != v.account_id || u.upstream_id != v.upstream_id ||
            u.status != v.status || u.flags != v.flags || u.prompt_tokens != v.prompt_tokens ||
            u.completion_tokens != v.completion_tokens || u.cached_tokens != v.cached_tokens ||
            u.cost_nanos != v.cost_nanos || u.latency_ms != v.latency_ms || u.ttfb_ms != v.ttfb_ms)
            abort();
    }
    free(copy);
    return 0;
}
