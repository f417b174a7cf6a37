/* Relaying one upstream exchange back to the client. Used by the proxy (provider calls, with
 * SSE inspection and usage capture) and by the management forwarder (persister calls).
 * Non-streaming answers are buffered (so headers such as x-tollgate-cost can be set from the
 * body); event streams are relayed event by event as they arrive, with back-pressure through the
 * double buffer.
 *
 * Lifetime. The relay is malloc'd; the request holds it through a pool reference. When the
 * client leaves, the transfer is cancelled and the relay freed with the request, unless the
 * owner set finish_on_abort and the answer is still awaited or good (api-compat 7.15,
 * `client_abort: finish`): the relay then detaches from the request and reads the answer to its
 * end, still calling on_event and on_finish (nothing goes to the client; an answer that turns
 * out bad is not retried), and frees itself when the transfer ends (completion, error or
 * timeout). For that it keeps its own copy of the upstream
 * request's strings. on_free runs when the relay is freed, for the owner's state. */
#ifndef TG_RELAY_H
#define TG_RELAY_H

#include <h2o.h>

#include "shm/usage.h"
#include "worker/sse.h"
#include "worker/upstream.h"

typedef struct tg_relay tg_relay_t;

typedef struct tg_relay_hooks {
    /** A complete SSE event from a 2xx stream: return 1 to forward it, 0 to hide it. */
    int (*on_event)(tg_relay_t *r, const char *ev, size_t len);
    /** The exchange is over (BODY is the buffered body of a non-stream answer, or empty); set
     * extra response headers here. Called once, before the final bytes are sent, or on abort. */
    void (*on_finish)(tg_relay_t *r, h2o_iovec_t body);
    /** The upstream failed before anything reached the client: STATUS is its HTTP status (429,
     * 5xx, 401, 403), or 0 with ERR set for a connection failure or timeout. Return 1 when the
     * owner started another attempt with tg_relay_start (the failed answer is then discarded,
     * never shown to the client), 0 to relay this failure as it is. May be NULL. */
    int (*on_failure)(tg_relay_t *r, int status, int err, const tg_xfer_header_t *headers, size_t n);
    /** A good answer's headers arrived (the attempt succeeded). May be NULL. */
    int (*on_success)(tg_relay_t *r);
    /** A non-stream answer (any status) is complete: returns the body the client gets, e.g.
     * translated to the client's surface (in the request pool), or BODY itself. May be NULL. */
    h2o_iovec_t (*transform)(tg_relay_t *r, h2o_iovec_t body);
    /** A relayed event stream ended (cleanly or not) before its last bytes go out: closing
     * events may be added with tg_relay_emit. May be NULL. */
    void (*on_stream_end)(tg_relay_t *r);
    /** The relay is being freed (after on_finish): free the owner's state. May be NULL. */
    void (*on_free)(tg_relay_t *r);
} tg_relay_hooks_t;

struct tg_relay {
    h2o_req_t *req; /* NULL once the client is gone */
    h2o_generator_t gen;
    const tg_relay_hooks_t *hooks;
    tg_xfer_t *xfer;
    int status;
    unsigned streaming : 1;   /* the answer is an event stream being relayed */
    unsigned started : 1;     /* h2o_start_response was called */
    unsigned sending : 1;     /* an h2o_send is in flight */
    unsigned upstream_done : 1;
    unsigned final_sent : 1;
    unsigned finished : 1;    /* on_finish ran */
    unsigned aborted : 1;     /* the client left before the end */
    unsigned forward_all_headers : 1;
    unsigned retrying : 1;    /* the current attempt was abandoned for another */
    unsigned finish_on_abort : 1; /* owner: a client that leaves mid-answer does not end the transfer */
    unsigned left : 1;        /* the client left (or the request ended) */
    unsigned detached : 1;    /* the client left and the answer is read on to its end */
    unsigned drained : 1;     /* detached, and the answer was then read to its end without error */
    unsigned paused : 1;      /* on_body paused the transfer */
    unsigned attempts;        /* upstream exchanges started */
    int retry_status;         /* status of the abandoned attempt */
    uint32_t retry_after_s;   /* its Retry-After, seconds */
    int error;                /* TG_XFER_* of the exchange */
    h2o_buffer_t *recv;       /* bytes received and not yet handed to h2o */
    h2o_doublebuffer_t db;
    tg_sse_t sse;
    uint64_t t0_ns, ttfb_ns;
    uint64_t events;          /* SSE events forwarded */
    void *owner;              /* the proxy's or forwarder's own state */
    uint64_t conn_id;         /* the client connection, for the rapid-reset defence */
    char *xreq_copy;          /* finish_on_abort: the current upstream request's strings (malloc'd) */
};

/** Allocates a relay for REQ (freed with REQ, or after its transfer when detached). */
tg_relay_t *tg_relay_create(h2o_req_t *req, const tg_relay_hooks_t *hooks, void *owner);
/** Queues bytes for the client of a streaming answer (from on_event or on_stream_end). */
void tg_relay_emit(tg_relay_t *r, const char *p, size_t n);
/** Starts the exchange; on failure answers 502 itself and returns -1. */
int tg_relay_start(tg_relay_t *r, const tg_xfer_request_t *xreq);

#endif
