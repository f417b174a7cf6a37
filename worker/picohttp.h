/* Declarations of picohttpparser as bundled and exported by libh2o 2.2.5 (libh2o-evloop.so
 * exports phr_*; Debian does not install the header). They match h2o v2.2.5's
 * deps/picohttpparser/picohttpparser.h. */
#ifndef TG_PICOHTTP_H
#define TG_PICOHTTP_H

#include <stddef.h>
#include <sys/types.h>

struct phr_header {
    const char *name; /* NULL for a continuation line of the previous header */
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Bytes consumed on success, -2 when the head is incomplete, -1 when malformed. */
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

/* Zero-filled before the first call. */
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer; /* consume the trailer section up to its blank line */
    char _hex_count;
    char _state;
};

/* Removes the chunked framing of BUF[0..*BUFSZ) in place: afterwards BUF[0..*BUFSZ) is body
 * data. Returns -2 when the body goes on, -1 on malformed framing, or, once the last chunk
 * (and trailer) ended, the number of bytes left after it (they follow the decoded data). */
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
