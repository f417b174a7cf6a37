/* mock.h - shared declarations of tollgate-mock, the fake upstream LLM provider used by e2e tests and benchmarks. */
#ifndef TOLLGATE_MOCK_H
#define TOLLGATE_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>

/* ---- settings -------------------------------------------------------------------------------------------------------- */

/* Response shaping knobs: CLI defaults, overridable per request by x-mock-* headers. */
typedef struct mock_knobs {
    uint64_t latency_ms;     /* time to first byte */
    uint64_t chunks;         /* content pieces (two tokens each) per completion */
    uint64_t chunk_delay_ms; /* gap between stream events */
    uint64_t body_bytes;     /* minimum non-streaming body size (padded with filler) */
} mock_knobs_t;

extern mock_knobs_t mock_defaults;
extern int mock_quiet;
extern int mock_log_requests; /* --log-requests: keep one line per request for /_mock/requests */

/* Knob names: `--NAME` on the command line, `x-mock-NAME` as a request header. */
typedef struct mock_knob_def {
    const char *name, *header;
    size_t offset; /* of the uint64_t in mock_knobs_t */
    uint64_t max;
} mock_knob_def_t;

#define MOCK_NUM_KNOBS 4
extern const mock_knob_def_t mock_knob_defs[MOCK_NUM_KNOBS];
/* Parses a decimal knob value, 0 or -1. */
int knob_parse(const char *s, size_t len, uint64_t max, uint64_t *out);
uint64_t *knob_field(mock_knobs_t *knobs, const mock_knob_def_t *def);

/* ---- json.c: tiny JSON scanner and writer ----------------------------------------------------------------------------- */

typedef enum { MJ_STRING, MJ_NUMBER, MJ_OBJECT, MJ_ARRAY, MJ_TRUE, MJ_FALSE, MJ_NULL } mj_type_t;

/* A scanned value. For strings, base/len is the raw content between the quotes (escapes kept, so it can be echoed into
 * JSON as is); for everything else it is the value's full text. */
typedef struct mj_value {
    mj_type_t type;
    const char *base;
    size_t len;
} mj_value_t;

typedef void (*mj_member_fn)(void *ctx, h2o_iovec_t key, const mj_value_t *value);

/* Validates that json is exactly one JSON object and calls fn for each of its top-level members. 0 or -1 (invalid). */
int mj_each_member(const char *json, size_t len, mj_member_fn fn, void *ctx);
int mj_key_is(h2o_iovec_t key, const char *name);
/* Integer value of a number without fraction or exponent; 0 or -1. */
int mj_int(const mj_value_t *value, int64_t *out);
/* Decodes a scanned string into a malloc'ed, NUL-terminated buffer (len in *out_len). NULL on failure. */
char *mj_strdup(const mj_value_t *value, size_t *out_len);

/* Growable output buffer. */
typedef struct mj_buf {
    char *base;
    size_t len, cap;
} mj_buf_t;

void mj_printf(mj_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mj_append(mj_buf_t *buf, const char *s, size_t len);
/* Appends a quoted JSON string; raw bytes are escaped, already-escaped JSON content (is_json) is copied verbatim. */
void mj_string(mj_buf_t *buf, const char *s, size_t len, int is_json);
void mj_free(mj_buf_t *buf);
/* printf into memory of the request pool */
h2o_iovec_t mj_pool_printf(h2o_mem_pool_t *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- stats.c: counters and the /_mock/stats and /_mock/reset endpoints ------------------------------------------------ */

typedef enum { OUTCOME_PENDING, OUTCOME_SERVED, OUTCOME_FAULT, OUTCOME_REJECTED, OUTCOME_ABORTED } mock_outcome_t;

/* Where one request is accounted: its slots in the per-key and per-model tables (-1 = none). */
typedef struct mock_account {
    uint32_t generation; /* stats generation the slots belong to (a reset invalidates them) */
    int key_slot, model_slot;
} mock_account_t;

void stats_begin(mock_account_t *acct, h2o_iovec_t key);
void stats_model(mock_account_t *acct, h2o_iovec_t model_json);
void stats_stream(mock_account_t *acct);
void stats_finish(mock_account_t *acct, mock_outcome_t outcome, uint64_t prompt_tokens, uint64_t completion_tokens);
/* completion tokens sent in a response that did not complete */
void stats_partial(mock_account_t *acct, uint64_t tokens);
void stats_handle_get(h2o_req_t *req);
void stats_handle_reset(h2o_req_t *req);
/* the generation of the counters: a reset bumps it */
uint32_t stats_generation(void);

/* ---- reqlog.c: the per-request log (--log-requests) and GET /_mock/requests ------------------------------------------ */

#define MOCK_REQUEST_ID_MAX 64

struct mock_exchange;
/* Logs a finished exchange (called once, when its request is freed). */
void reqlog_add(const struct mock_exchange *ex);
void reqlog_clear(void);
void reqlog_handle_get(h2o_req_t *req);

/* ---- faults.c: fault kinds, the per-key fault table and /_mock/faults -------------------------------------------------- */

typedef enum {
    FAULT_NONE,
    FAULT_429,
    FAULT_500,
    FAULT_503,
    FAULT_401,
    FAULT_RESET,
    FAULT_STALL,
    FAULT_MIDSTREAM_RESET,
    FAULT_MIDSTREAM_STALL,
} mock_fault_t;

/* How a response is cut short. */
typedef enum { CUT_NONE, CUT_CLOSE, CUT_STALL } mock_cut_t;

int fault_parse(const char *s, size_t len, mock_fault_t *out);
const char *fault_name(mock_fault_t fault);
/* HTTP status (and error code, message) of an error-answer fault; 0 for the others */
int fault_error(mock_fault_t fault, const char **code, const char **message);
mock_cut_t fault_cut(mock_fault_t fault);
int fault_is_midstream(mock_fault_t fault);
/* Consumes one use of the table entry for key (or of the "*" entry). FAULT_NONE if none. */
mock_fault_t faults_take(h2o_iovec_t key);
void faults_clear(void);
void faults_handle_get(h2o_req_t *req);
void faults_handle_post(h2o_req_t *req);
void faults_handle_delete(h2o_req_t *req);

/* ---- hold.c: delayed callbacks and client-gone detection for held requests -------------------------------------------- */

typedef struct mock_hold mock_hold_t;
struct mock_hold {
    h2o_timeout_entry_t timer;
    h2o_linklist_t watched; /* in the client-gone watch list (HTTP/1 only) */
    h2o_req_t *req;
    void (*on_wake)(mock_hold_t *hold);
    void (*on_gone)(mock_hold_t *hold);
};

void hold_init(h2o_context_t *ctx);
void hold_prepare(mock_hold_t *hold, h2o_req_t *req, void (*on_wake)(mock_hold_t *), void (*on_gone)(mock_hold_t *));
void hold_for(mock_hold_t *hold, uint64_t ms); /* calls on_wake after ms */
void hold_forever(mock_hold_t *hold);          /* only on_gone can end it */
void hold_release(mock_hold_t *hold);          /* idempotent */

/* ---- exchange.c: one upstream request from arrival to its last byte --------------------------------------------------- */

typedef struct mock_exchange mock_exchange_t;

/* An API surface (OpenAI chat, Anthropic messages, ...): how it reads requests and renders errors and stream events. */
typedef struct mock_surface {
    /* JSON error body for status (message and code are JSON-safe literals, code may be NULL) */
    h2o_iovec_t (*render_error)(h2o_mem_pool_t *pool, int status, const char *code, const char *message);
    /* completion-style surfaces: reads the request (body, and path or query where the surface puts things there) into
     * ex->llm; returns a 400 message or NULL. A missing model is rejected by the caller. */
    const char *(*parse)(mock_exchange_t *ex);
    /* completion-style surfaces: builds the non-streaming body into ex->body, or for a stream sets ex->nevents and
     * ex->cut_at (the events sent before a midstream fault: the first half of the content) */
    void (*plan)(mock_exchange_t *ex);
    /* renders stream event `index` (0 <= index < nevents), usually into ex->scratch */
    h2o_iovec_t (*render_event)(mock_exchange_t *ex, size_t index);
} mock_surface_t;

/* What a completion-style request asked for and what it will get. */
typedef struct mock_completion {
    h2o_iovec_t model; /* raw JSON string content */
    int stream, include_usage;
    int64_t max_tokens; /* output token cap (max_tokens, max_output_tokens, ...), -1: not given */
    uint64_t chunks;    /* content pieces to produce */
    int truncated;      /* chunks were capped by max_tokens */
    uint64_t prompt_tokens, completion_tokens;
    uint64_t id;
    int64_t created;
} mock_completion_t;

struct mock_exchange {
    h2o_req_t *req;
    const mock_surface_t *surface;
    mock_knobs_t knobs;
    h2o_iovec_t key; /* upstream API key (bearer token, x-api-key, x-goog-api-key or ?key=), may be empty */
    char request_id[MOCK_REQUEST_ID_MAX]; /* the x-request-id header, "" when absent (for the request log) */
    mock_account_t acct;
    mock_outcome_t outcome;
    mock_completion_t llm;

    /* response plan: a static body (sent in one piece, or two halves when cut) or nevents rendered events */
    h2o_iovec_t body;
    size_t nevents, next;
    mock_cut_t cut;
    size_t cut_at;          /* pieces sent before the cut */
    uint64_t tokens_sent;   /* completion tokens in the events sent so far */
    int started;
    char *event_buf; /* pool memory for stream events too large for scratch (see exchange_event_buffer) */
    size_t event_cap;

    h2o_generator_t generator;
    mock_hold_t hold;
    char scratch[1024]; /* the stream event being sent (reused once h2o asks for the next one) */
};

/* Creates the exchange for an upstream request, counting it; reads the x-mock-* knobs. On a bad knob it answers 400 and
 * returns NULL. */
mock_exchange_t *exchange_new(h2o_req_t *req, const mock_surface_t *surface);
/* Answers with an error body of the surface, as a rejection (4xx of our own) or as an injected fault. */
void exchange_reject(mock_exchange_t *ex, int status, const char *code, const char *message);
/* Picks the fault for this request (x-mock-fault header, then the fault table). If it is answered right away (error
 * status, reset, stall) this does so and returns 1; a midstream fault is remembered for exchange_serve. */
int exchange_apply_fault(mock_exchange_t *ex);
/* Answers 200 with ex->body, or with ex->nevents events from surface->render_event. */
void exchange_serve(mock_exchange_t *ex, const char *content_type);
/* Memory for rendering a stream event of up to size bytes: ex->scratch, or a pool buffer that is reused by the
 * exchange's later events (like scratch, it is overwritten once h2o asks for the next event). */
char *exchange_event_buffer(mock_exchange_t *ex, size_t size);
/* The raw (still percent-encoded) value of query parameter name, or {NULL, 0} when absent. */
h2o_iovec_t query_param(h2o_req_t *req, const char *name, size_t len);

/* ---- completion.c: the request flow shared by completion-style surfaces ----------------------------------------------- */

#define COMPLETION_MAX_MODEL_LEN 256 /* bytes of raw JSON string content */
#define COMPLETION_BAD_JSON "We could not parse the JSON body of your request (expected a JSON object)."

void completion_handle(h2o_req_t *req, const mock_surface_t *surface);
/* surface->parse of the chat-style bodies (OpenAI chat, Anthropic): model, stream, stream_options.include_usage,
 * max_tokens, max_completion_tokens */
const char *completion_parse_chat(mock_exchange_t *ex);
/* Readers of the shared request members for surface parsers: 0, or -1 if the value is invalid. A cap (token limit)
 * may be given several times; the smallest applies. */
int completion_set_model(mock_completion_t *llm, const mj_value_t *value);
int completion_set_stream(mock_completion_t *llm, const mj_value_t *value);
int completion_set_cap(mock_completion_t *llm, const mj_value_t *value);
/* The deterministic content: piece i is two words, counted as two tokens. */
const char *completion_piece(uint64_t i);
/* Length of the whole text (all llm->chunks pieces), and writing it to dst (returns the end of what was written). */
size_t completion_text_len(const mock_completion_t *llm);
char *completion_write_text(const mock_completion_t *llm, char *dst);
/* The non-streaming body head + all pieces + tail, with filler after the pieces up to the body-bytes knob. */
h2o_iovec_t completion_body(mock_exchange_t *ex, const char *head, size_t head_len, const char *tail, size_t tail_len);

/* ---- surfaces -------------------------------------------------------------------------------------------------------- */

void openai_chat(h2o_req_t *req);
void openai_models(h2o_req_t *req);
void anthropic_messages(h2o_req_t *req);
void responses_create(h2o_req_t *req);
void gemini_generate(h2o_req_t *req); /* both :generateContent and :streamGenerateContent */
extern const mock_surface_t openai_surface, gemini_surface;
/* the OpenAI error body, shared by the Responses surface */
h2o_iovec_t openai_render_error(h2o_mem_pool_t *pool, int status, const char *code, const char *message);

/* ---- objects.c: what a provider keeps between requests, per upstream key -------------------------------------------- */

typedef enum { OBJ_FILE, OBJ_THREAD, OBJ_MESSAGE, OBJ_RUN } mock_obj_kind_t;

typedef struct mock_obj {
    mock_obj_kind_t kind;
    char id[48], parent[48]; /* parent: the thread of a message or run */
    char *key;               /* the upstream API key that created it: no other key sees it */
    int64_t created;
    char *a, *b, *c; /* JSON string literals (quotes included): file filename, purpose; message role, text,
                        assistant_id (c, NULL: null); run assistant_id, model */
    char ref[48];    /* message: the run that wrote it ("": none) */
    char *data;  /* file content */
    size_t data_len;
    int completed; /* run: 0 queued, 1 completed */
    uint64_t prompt_tokens, completion_tokens;
    struct mock_obj *next;
} mock_obj_t;

mock_obj_t *obj_new(mock_obj_kind_t kind, h2o_iovec_t key, const char *id_prefix, const char *parent);
/* Sets *field to p[0..n) as a JSON string literal (is_json: p is already-escaped JSON string content). */
void obj_set_text(char **field, const char *p, size_t n, int is_json);
void obj_set_data(mock_obj_t *o, const char *p, size_t n);
mock_obj_t *obj_find(mock_obj_kind_t kind, h2o_iovec_t key, h2o_iovec_t id);
/* The next object of kind (newest first) that key sees, after `after` (NULL: the first); parent NULL = any. */
mock_obj_t *obj_next(mock_obj_t *after, mock_obj_kind_t kind, h2o_iovec_t key, const char *parent);
void obj_delete(mock_obj_t *o);
void obj_clear(void);
/* Segment index of the normalized path (0 = "v1"), or {NULL, 0}. */
h2o_iovec_t path_segment(h2o_req_t *req, size_t index);
/* Answers 404 "No such WHAT: ID" (ID escaped). */
void reject_not_found(mock_exchange_t *ex, const char *what, h2o_iovec_t id);
/* Answers 200 with the JSON in body (freed). */
void serve_json(mock_exchange_t *ex, mj_buf_t *body);
/* Answers 200 with an OpenAI list of the comma-separated JSON objects in items (freed). */
void serve_list(mock_exchange_t *ex, mj_buf_t *items, const char *first_id, const char *last_id);
/* The object of KIND whose id is path segment INDEX (and whose parent is PARENT, unless NULL) that the exchange's key
 * sees; NULL after answering 404 "No such WHAT". */
mock_obj_t *obj_at_path(mock_exchange_t *ex, mock_obj_kind_t kind, size_t index, const char *parent, const char *what);
typedef void (*obj_render_fn)(mj_buf_t *out, const mock_obj_t *o);
/* Whether a listing shows O (it may bring O up to date first); ctx as given to serve_objs. */
typedef int (*obj_keep_fn)(mock_exchange_t *ex, mock_obj_t *o, void *ctx);
/* Answers 200 with O as RENDER writes it. */
void serve_obj(mock_exchange_t *ex, obj_render_fn render, const mock_obj_t *o);
/* Answers 200 with the list of the objects of KIND under PARENT (NULL: any) that the exchange's key sees, newest
 * first, those KEEP accepts (NULL: all), each as RENDER writes it. */
void serve_objs(mock_exchange_t *ex, mock_obj_kind_t kind, const char *parent, obj_render_fn render, obj_keep_fn keep, void *ctx);

/* ---- files.c, assistants.c: the OpenAI Files and Assistants (threads, messages, runs) surfaces ---------------------- */

void files_create(h2o_req_t *req);
void files_list(h2o_req_t *req);
void files_retrieve(h2o_req_t *req);
void files_delete(h2o_req_t *req);
void files_content(h2o_req_t *req);
void threads_create(h2o_req_t *req);
void threads_retrieve(h2o_req_t *req);
void threads_create_and_run(h2o_req_t *req);
void runs_list(h2o_req_t *req);
void threads_delete(h2o_req_t *req);
void messages_create(h2o_req_t *req);
void messages_list(h2o_req_t *req);
void runs_create(h2o_req_t *req);
void runs_retrieve(h2o_req_t *req);

/* ---- router.c: dispatch table and plain responses ------------------------------------------------------------------- */

int router_on_req(h2o_handler_t *self, h2o_req_t *req);
void respond(h2o_req_t *req, int status, const char *content_type, h2o_iovec_t body);
const char *status_reason(int status);

/* ---- tls.c: the optional TLS listener's context ----------------------------------------------------------------- */

/** A server context with CERT (a PEM chain) and KEY; MAX_VERSION caps the protocol (0: none). Exits 1 on failure. */
SSL_CTX *mock_tls_ctx(const char *cert, const char *key, int max_version);

#endif
