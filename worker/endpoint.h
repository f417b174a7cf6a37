/* The proxied endpoints: which client paths tollgate serves as model calls, what each is called
 * upstream, how its model is found (JSON body or multipart form), and which upstream protocols
 * can take it as it is. One table, so adding an endpoint is one row. */
#ifndef TG_ENDPOINT_H
#define TG_ENDPOINT_H

#include <h2o.h>
#include <stdint.h>

typedef enum {
    TG_API_CHAT = 0,  /* OpenAI chat completions */
    TG_API_RESPONSES, /* OpenAI Responses */
    TG_API_MESSAGES,  /* Anthropic messages */
    TG_API_OPENAI,    /* other OpenAI endpoints: embeddings, moderations, images, audio */
    TG_API_STATEFUL,  /* OpenAI objects kept by the provider: files, threads (Assistants) */
} tg_api_t;

typedef struct tg_endpoint {
    const char *path;          /* as the client sends it */
    tg_api_t api;
    const char *upstream_path; /* as the upstream expects it (provider base URL + this) */
    uint32_t protocols;        /* bit mask of 1 << tg_protocol_t that take this endpoint unchanged */
    unsigned multipart : 1;    /* the body is multipart/form-data; the model is a form field */
    unsigned model_optional : 1;
    unsigned stateful : 1;     /* PATH and every path below it, any of GET/POST/DELETE, passed on as the
                                  client sent them (query included); ids live on the provider's key that
                                  made them, so one pinned key serves them (docs/proxy.md) */
    unsigned runs : 1;         /* answers may hold Assistants runs, billed from their usage (worker/run_usage.h) */
} tg_endpoint_t;

/** The endpoint for PATH (query string ignored), or NULL when PATH is not proxied. */
const tg_endpoint_t *tg_endpoint_find(h2o_iovec_t path);
/** Finds the `model` form field of a multipart body with BOUNDARY; 0 and sets *model, or -1. */
int tg_multipart_model(h2o_iovec_t body, h2o_iovec_t content_type, h2o_iovec_t *model);

#endif
