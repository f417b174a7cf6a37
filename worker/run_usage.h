/* Assistants runs in an answer: a run's `usage` is cumulative and shown every time the run object
 * is returned (create, retrieve, list, submit_tool_outputs, the `thread.run.*` stream events), so
 * tollgate bills a run from the run object itself, once, when it is first seen in a terminal
 * status with usage. This file finds such runs in one JSON answer (a run object, or a list of
 * them); the persister keeps each billed run id so later sightings are stored unbilled
 * (store/run_once.h). Pure: no allocation, no state. */
#ifndef TG_RUN_USAGE_H
#define TG_RUN_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "shm/usage.h"

#define TG_RUNS_MAX 100 /* runs read from one answer: the most a list page holds */

typedef struct tg_run {
    char id[TG_RUN_ID_MAX];
    char model[TG_MODEL_MAX];
    uint64_t prompt_tokens, completion_tokens;
} tg_run_t;

/** Reads the run object at [P, P+N) into *OUT when it is a finished run (`object` "thread.run",
 * `status` completed, failed, cancelled, expired or incomplete) that reports `usage`. 1 when it
 * is one, 0 otherwise (another object, a run still going, no usage, an id or model too long). */
int tg_run_terminal(const char *p, size_t n, tg_run_t *out);
/** The finished runs of an answer: P is a run object or a list (`object` "list", `data` an array
 * of run objects). Writes up to MAX runs into OUT and returns how many; 0 when there is none or
 * P is not JSON. */
size_t tg_run_scan(const char *p, size_t n, tg_run_t *out, size_t max);

#endif
