/* The glue between the request path and the protocol translators (worker/proto.h): which
 * upstream protocols can serve an endpoint, and for one attempt on one key the upstream body,
 * path and stream translator. The translation state lives in the caller's request state; its
 * stream translator is malloc'd and freed by tg_translate_free (it may outlive the request when
 * the relay reads on after the client left). */
#ifndef TG_TRANSLATE_H
#define TG_TRANSLATE_H

#include <h2o.h>

#include "shm/usage.h"
#include "worker/endpoint.h"
#include "worker/proto.h"
#include "worker/relay.h"

typedef struct tg_translation {
    tg_surface_t from, to;
    int active;                /* from != to: bodies and events are translated */
    int client_wants_usage;    /* an OpenAI chat client asked for the usage chunk */
    tg_proto_stream_t *stream; /* the current attempt's stream translator, or NULL */
    const char *model;         /* model name shown to the client */
} tg_translation_t;

/** Protocols (bit mask of 1 << tg_protocol_t) that can serve EP, as they are or translated. */
uint32_t tg_translate_protocols(const tg_endpoint_t *ep);
/** Prepares one attempt of a call to endpoint EP on a key speaking PROTOCOL: sets *T and, when a
 * translation is needed, *BODY and *PATH (in the request pool) for the upstream. 0, or -1 with a
 * message in *ERR (request pool) naming what the upstream cannot take. */
int tg_translate_attempt(h2o_req_t *req, tg_translation_t *t, const tg_endpoint_t *ep, int protocol, int stream,
                         const char *model, h2o_iovec_t *body, const char **path, const char **err);
/** A streaming event from the upstream: translated into the relay (returns 0: the original is
 * hidden), or 1 to relay it as it is (no translation). -1 on an event the translator refused. */
int tg_translate_event(tg_translation_t *t, tg_relay_t *r, const char *ev, size_t len);
/** The upstream stream ended: the closing events of the client's surface. */
void tg_translate_stream_end(tg_translation_t *t, tg_relay_t *r);
/** A complete non-stream answer translated for the client (2xx answers and error bodies alike). */
h2o_iovec_t tg_translate_body(tg_translation_t *t, h2o_req_t *req, int status, h2o_iovec_t body);
/** Frees the stream translator (idempotent). */
void tg_translate_free(tg_translation_t *t);
/** Usage and relayed text the stream translator measured; 0 when there is no translator. */
int tg_translate_usage(const tg_translation_t *t, tg_usage_t *u, uint64_t *text_chars);

#endif
