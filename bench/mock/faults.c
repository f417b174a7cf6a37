/* faults.c - fault kinds, the per-upstream-key fault table, and its /_mock/faults management endpoints. */
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define MAX_ENTRIES 256
#define ANY_KEY "*"

static const struct fault_info {
    const char *name;
    int status;                  /* error answer, or 0 */
    const char *code, *message; /* of the error answer */
    mock_cut_t cut;              /* how the response is cut, for the others */
    int midstream;
} fault_infos[] = {
    [FAULT_NONE] = {"none"},
    [FAULT_429] = {"429", 429, "rate_limit_exceeded", "Rate limit reached (injected by tollgate-mock)."},
    [FAULT_500] = {"500", 500, NULL, "The server had an error while processing your request (injected by tollgate-mock)."},
    [FAULT_503] = {"503", 503, NULL, "The server is overloaded or not ready yet (injected by tollgate-mock)."},
    [FAULT_401] = {"401", 401, "invalid_api_key", "Incorrect API key provided (injected by tollgate-mock)."},
    [FAULT_RESET] = {"reset", .cut = CUT_CLOSE},
    [FAULT_STALL] = {"stall", .cut = CUT_STALL},
    [FAULT_MIDSTREAM_RESET] = {"midstream-reset", .cut = CUT_CLOSE, .midstream = 1},
    [FAULT_MIDSTREAM_STALL] = {"midstream-stall", .cut = CUT_STALL, .midstream = 1},
};

static struct entry {
    char *key;
    size_t key_len;
    mock_fault_t fault;
    int64_t remaining; /* -1: forever */
} entries[MAX_ENTRIES];
static size_t num_entries;

int fault_parse(const char *s, size_t len, mock_fault_t *out)
{
    for (size_t i = 0; i != sizeof(fault_infos) / sizeof(fault_infos[0]); ++i) {
        if (h2o_lcstris(s, len, fault_infos[i].name, strlen(fault_infos[i].name))) {
            *out = (mock_fault_t)i;
            return 0;
        }
    }
    return -1;
}

const char *fault_name(mock_fault_t fault)
{
    return fault_infos[fault].name;
}

int fault_error(mock_fault_t fault, const char **code, const char **message)
{
    *code = fault_infos[fault].code;
    *message = fault_infos[fault].message;
    return fault_infos[fault].status;
}

mock_cut_t fault_cut(mock_fault_t fault)
{
    return fault_infos[fault].cut;
}

int fault_is_midstream(mock_fault_t fault)
{
    return fault_infos[fault].midstream;
}

static struct entry *find(const char *key, size_t len)
{
    for (size_t i = 0; i != num_entries; ++i)
        if (h2o_memis(entries[i].key, entries[i].key_len, key, len))
            return &entries[i];
    return NULL;
}

static void remove_entry(struct entry *e)
{
    free(e->key);
    *e = entries[--num_entries];
}

mock_fault_t faults_take(h2o_iovec_t key)
{
    struct entry *e;
    mock_fault_t fault;

    if (num_entries == 0)
        return FAULT_NONE;
    if ((key.len == 0 || (e = find(key.base, key.len)) == NULL) && (e = find(H2O_STRLIT(ANY_KEY))) == NULL)
        return FAULT_NONE;
    fault = e->fault;
    if (e->remaining > 0 && --e->remaining == 0)
        remove_entry(e);
    return fault;
}

void faults_clear(void)
{
    while (num_entries != 0)
        remove_entry(&entries[0]);
}

static void send_table(h2o_req_t *req)
{
    mj_buf_t out = {0};

    mj_printf(&out, "{\"faults\":[");
    for (size_t i = 0; i != num_entries; ++i) {
        mj_printf(&out, "%s{\"key\":", i ? "," : "");
        mj_string(&out, entries[i].key, entries[i].key_len, 0);
        mj_printf(&out, ",\"fault\":\"%s\",\"count\":%lld}", fault_name(entries[i].fault), (long long)entries[i].remaining);
    }
    mj_printf(&out, "]}\n");
    respond(req, 200, "application/json", h2o_iovec_init(out.base, out.len));
    mj_free(&out);
}

void faults_handle_get(h2o_req_t *req)
{
    send_table(req);
}

void faults_handle_delete(h2o_req_t *req)
{
    faults_clear();
    send_table(req);
}

struct post_args {
    mj_value_t key, fault, count;
};

static void on_post_member(void *ctx, h2o_iovec_t name, const mj_value_t *value)
{
    struct post_args *args = ctx;
    if (mj_key_is(name, "key"))
        args->key = *value;
    else if (mj_key_is(name, "fault"))
        args->fault = *value;
    else if (mj_key_is(name, "count"))
        args->count = *value;
}

static void bad_request(h2o_req_t *req, const char *message)
{
    mj_buf_t out = {0};
    mj_printf(&out, "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\",\"code\":null}}\n", message);
    respond(req, 400, "application/json", h2o_iovec_init(out.base, out.len));
    mj_free(&out);
}

/* Applies a POST body {"key":"<api key or *>","fault":"<name>","count":N} (count -1, the default, = forever; 0 or
 * fault "none" removes the entry). Returns an error message, or NULL. */
static const char *update_table(h2o_iovec_t body)
{
    struct post_args args = {.key.type = MJ_NULL, .fault.type = MJ_NULL, .count.type = MJ_NULL};
    mock_fault_t fault;
    int64_t count = -1;
    struct entry *e;
    size_t key_len;
    char *key;

    if (mj_each_member(body.base, body.len, on_post_member, &args) != 0)
        return "body must be a JSON object";
    if (args.key.type != MJ_STRING || args.fault.type != MJ_STRING)
        return "key and fault must be strings";
    if (fault_parse(args.fault.base, args.fault.len, &fault) != 0)
        return "unknown fault (429, 500, 503, 401, reset, stall, midstream-reset, midstream-stall, none)";
    if (args.count.type != MJ_NULL && (mj_int(&args.count, &count) != 0 || count < -1))
        return "count must be an integer >= -1";
    if ((key = mj_strdup(&args.key, &key_len)) == NULL)
        return "bad key";

    if ((e = find(key, key_len)) != NULL)
        remove_entry(e);
    if (count == 0 || fault == FAULT_NONE) {
        free(key);
        return NULL;
    }
    if (num_entries == MAX_ENTRIES) {
        free(key);
        return "fault table full";
    }
    entries[num_entries++] = (struct entry){key, key_len, fault, count};
    return NULL;
}

void faults_handle_post(h2o_req_t *req)
{
    const char *error = update_table(req->entity);

    if (error != NULL)
        bad_request(req, error);
    else
        send_table(req);
}
