/* HTTP/1.1 on the wire for the lean upstream client (upstream_h1.c): the request head it writes
 * and the framing of the response it reads. Pure functions over caller-owned bytes (no I/O, no
 * allocation), so they are unit-tested and fuzzed directly. */
#ifndef TG_H1WIRE_H
#define TG_H1WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "worker/picohttp.h"
#include "worker/upstream.h"

enum { TG_H1_HEAD, TG_H1_BODY_LENGTH, TG_H1_BODY_CHUNKED, TG_H1_BODY_EOF, TG_H1_DONE };

#define TG_H1_MAX_HEADERS 100       /* a head with more header lines is refused */
#define TG_H1_MAX_HEAD (64 * 1024)  /* a head longer than this is refused */

typedef struct tg_h1_response {
    uint8_t state;      /* TG_H1_*: what the next bytes are */
    uint8_t head_request; /* the request was HEAD: no body follows whatever the head says */
    uint8_t keep_alive; /* the connection may carry another exchange once this one ended */
    int status;
    uint64_t remaining; /* body bytes still due (TG_H1_BODY_LENGTH) */
    struct phr_chunked_decoder chunked;
} tg_h1_response_t;

void tg_h1_response_init(tg_h1_response_t *r, int head_request);

/** Parses the response head at the front of BUF[0..LEN). Header names are lower-cased in place and
 *  HEADERS (room for TG_H1_MAX_HEADERS) point into BUF. Returns the head's length once it is whole,
 *  0 when more bytes are needed, -1 when it is malformed or too large (*WHY says what is wrong).
 *  After an interim (1xx) head the state stays TG_H1_HEAD: drop its bytes and parse again. After
 *  the final head the state says how the body is framed (TG_H1_DONE: there is none). */
int tg_h1_parse_head(tg_h1_response_t *r, char *buf, size_t len, tg_xfer_header_t *headers, size_t *n_headers,
                     const char **why);

/** Frames the body bytes at the front of BUF[0..*LEN), removing chunked framing in place: afterwards
 *  BUF[0..*BODY) is body data and *LEN the number of bytes still held, body included. Returns 1
 *  when the body ended (BUF[*BODY..*LEN) then lies beyond the response), 0 when more is due, -1
 *  when the framing is malformed. */
int tg_h1_frame_body(tg_h1_response_t *r, char *buf, size_t *len, size_t *body);

/** The peer closed the connection: 0 when that ends the body (framing by EOF), -1 when it cut the
 *  response short. */
int tg_h1_at_eof(tg_h1_response_t *r);

/** Writes "METHOD PATH HTTP/1.1", Host, HEADERS ("Name: value" lines) and, when WITH_LENGTH,
 *  Content-Length: BODY_LEN, then the blank line, into DST (CAP bytes). Returns the head's length;
 *  when that is more than CAP, DST holds only a prefix: call again with that much room. */
size_t tg_h1_request_head(char *dst, size_t cap, const char *method, const char *path, size_t path_len, const char *host,
                          size_t host_len, const char *const *headers, size_t n_headers, int with_length,
                          size_t body_len);

#endif
