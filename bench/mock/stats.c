/* stats.c - request/token counters (total, per upstream key, per model) and the /_mock/stats and /_mock/reset endpoints.
 *
 * Every upstream request ends in exactly one outcome, so requests = served + faults + rejected + aborted + in flight. */
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define TABLE_CAPACITY 256
#define OVERFLOW_NAME "(other)"

typedef struct tally {
    uint64_t requests, served, streams, faults, rejected, aborted;
    uint64_t prompt_tokens, completion_tokens, partial_completion_tokens;
} tally_t;

typedef struct slot {
    char *name;
    size_t len;
    uint32_t hash;
    tally_t tally;
} slot_t;

/* named slots, plus one overflow slot shared by every name that arrives when the table is full */
typedef struct table {
    slot_t slots[TABLE_CAPACITY + 1];
    size_t count;
    int names_are_json; /* names are raw JSON string content (models) rather than raw bytes (keys) */
} table_t;

static tally_t total;
static table_t by_key, by_model = {.names_are_json = 1};
static uint32_t generation = 1;

static uint32_t hash_of(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i != len; ++i)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static int table_slot(table_t *table, h2o_iovec_t name)
{
    uint32_t hash = hash_of(name.base, name.len);
    size_t i;

    for (i = 0; i != table->count; ++i) {
        slot_t *slot = &table->slots[i];
        if (slot->hash == hash && h2o_memis(slot->name, slot->len, name.base, name.len))
            return (int)i;
    }
    if (table->count == TABLE_CAPACITY) {
        slot_t *overflow = &table->slots[TABLE_CAPACITY];
        if (overflow->name == NULL)
            *overflow = (slot_t){strdup(OVERFLOW_NAME), strlen(OVERFLOW_NAME), 0, {0}};
        return TABLE_CAPACITY;
    }
    slot_t *slot = &table->slots[table->count];
    *slot = (slot_t){malloc(name.len + 1), name.len, hash, {0}};
    memcpy(slot->name, name.base, name.len);
    slot->name[name.len] = '\0';
    return (int)table->count++;
}

static void table_clear(table_t *table)
{
    for (size_t i = 0; i != TABLE_CAPACITY + 1; ++i) {
        free(table->slots[i].name);
        table->slots[i] = (slot_t){0};
    }
    table->count = 0;
}

/* the tallies an exchange's outcome is added to: total, its key's and its model's (none if a reset happened since) */
static size_t tallies_of(const mock_account_t *acct, tally_t *out[3])
{
    size_t n = 0;
    if (acct->generation != generation)
        return 0;
    out[n++] = &total;
    if (acct->key_slot >= 0)
        out[n++] = &by_key.slots[acct->key_slot].tally;
    if (acct->model_slot >= 0)
        out[n++] = &by_model.slots[acct->model_slot].tally;
    return n;
}

uint32_t stats_generation(void)
{
    return generation;
}

void stats_begin(mock_account_t *acct, h2o_iovec_t key)
{
    *acct = (mock_account_t){generation, key.len != 0 ? table_slot(&by_key, key) : -1, -1};
    ++total.requests;
    if (acct->key_slot >= 0)
        ++by_key.slots[acct->key_slot].tally.requests;
}

void stats_model(mock_account_t *acct, h2o_iovec_t model_json)
{
    if (acct->generation != generation || acct->model_slot >= 0)
        return;
    acct->model_slot = table_slot(&by_model, model_json);
    ++by_model.slots[acct->model_slot].tally.requests;
}

void stats_stream(mock_account_t *acct)
{
    tally_t *tallies[3];
    for (size_t i = 0, n = tallies_of(acct, tallies); i != n; ++i)
        ++tallies[i]->streams;
}

void stats_finish(mock_account_t *acct, mock_outcome_t outcome, uint64_t prompt_tokens, uint64_t completion_tokens)
{
    tally_t *tallies[3];

    for (size_t i = 0, n = tallies_of(acct, tallies); i != n; ++i) {
        tally_t *t = tallies[i];
        switch (outcome) {
        case OUTCOME_SERVED:
            ++t->served;
            t->prompt_tokens += prompt_tokens;
            t->completion_tokens += completion_tokens;
            break;
        case OUTCOME_FAULT:
            ++t->faults;
            break;
        case OUTCOME_REJECTED:
            ++t->rejected;
            break;
        case OUTCOME_ABORTED:
            ++t->aborted;
            break;
        case OUTCOME_PENDING:
            break;
        }
    }
}

void stats_partial(mock_account_t *acct, uint64_t tokens)
{
    tally_t *tallies[3];
    for (size_t i = 0, n = tallies_of(acct, tallies); i != n; ++i)
        tallies[i]->partial_completion_tokens += tokens;
}

static void tally_json(mj_buf_t *out, const tally_t *t)
{
    mj_printf(out,
              "{\"requests\":%llu,\"served\":%llu,\"streams\":%llu,\"faults\":%llu,\"rejected\":%llu,\"aborted\":%llu,"
              "\"prompt_tokens\":%llu,\"completion_tokens\":%llu,\"partial_completion_tokens\":%llu",
              (unsigned long long)t->requests, (unsigned long long)t->served, (unsigned long long)t->streams,
              (unsigned long long)t->faults, (unsigned long long)t->rejected, (unsigned long long)t->aborted,
              (unsigned long long)t->prompt_tokens, (unsigned long long)t->completion_tokens,
              (unsigned long long)t->partial_completion_tokens);
}

static void table_json(mj_buf_t *out, const table_t *table)
{
    int first = 1;

    mj_append(out, "{", 1);
    for (size_t i = 0; i != TABLE_CAPACITY + 1; ++i) {
        const slot_t *slot = &table->slots[i];
        if (slot->name == NULL)
            continue;
        if (!first)
            mj_append(out, ",", 1);
        first = 0;
        mj_string(out, slot->name, slot->len, table->names_are_json && i != TABLE_CAPACITY);
        mj_append(out, ":", 1);
        tally_json(out, &slot->tally);
        mj_append(out, "}", 1);
    }
    mj_append(out, "}", 1);
}

void stats_handle_get(h2o_req_t *req)
{
    mj_buf_t out = {0};

    tally_json(&out, &total);
    mj_printf(&out, ",\"by_key\":");
    table_json(&out, &by_key);
    mj_printf(&out, ",\"by_model\":");
    table_json(&out, &by_model);
    mj_printf(&out, "}\n");
    respond(req, 200, "application/json", h2o_iovec_init(out.base, out.len));
    mj_free(&out);
}

/* zeroes every counter and clears the fault table and the kept objects (files, threads); requests in flight at this point
 * are no longer accounted */
void stats_handle_reset(h2o_req_t *req)
{
    total = (tally_t){0};
    table_clear(&by_key);
    table_clear(&by_model);
    ++generation;
    faults_clear();
    reqlog_clear();
    obj_clear();
    respond(req, 200, "application/json", h2o_iovec_init(H2O_STRLIT("{\"reset\":true}\n")));
}
