/* libFuzzer target: finding finished Assistants runs in an answer (worker/run_usage.h). Every run
 * found must hold NUL-terminated, non-empty id and model strings, and a run object found alone
 * must be found again as the only item of a list. */
#include "worker/run_usage.h"
#include <stdlib.h>
#include <string.h>

#include "fuzz_ref.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static tg_run_t runs[TG_RUNS_MAX];
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    size_t n = tg_run_scan(copy, size, runs, TG_RUNS_MAX);
    FUZZ_CHECK(n <= TG_RUNS_MAX, "%zu runs", n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(memchr(runs[i].id, 0, sizeof runs[i].id) && memchr(runs[i].model, 0, sizeof runs[i].model) &&
                       runs[i].id[0] && runs[i].model[0],
                   "run %zu", i);
    tg_run_t one;
    if (size < 65536 && tg_run_terminal(copy, size, &one)) {
        static const char head[] = "{\"object\":\"list\",\"data\":[", tail[] = "]}";
        char *list = malloc(size + sizeof(head) + sizeof(tail)); /* memcpy: the input may hold NUL bytes */
        memcpy(list, head, sizeof(head) - 1);
        memcpy(list + sizeof(head) - 1, copy, size);
        memcpy(list + sizeof(head) - 1 + size, tail, sizeof(tail) - 1);
        size_t len = sizeof(head) - 1 + size + sizeof(tail) - 1;
        tg_run_t again;
        FUZZ_CHECK(tg_run_scan(list, len, &again, 1) == 1 && strcmp(again.id, one.id) == 0 &&
                       again.prompt_tokens == one.prompt_tokens && again.completion_tokens == one.completion_tokens,
                   "the run %s alone in a list", one.id);
        free(list);
    }
    free(copy);
    return 0;
}
