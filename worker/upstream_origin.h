/* The lean upstream client's origins: one per scheme + host + port, with the addresses to connect
 * to. A numeric host is parsed at once and never expires. A host name is resolved off the loop
 * thread by libh2o's resolver (h2o_hostinfo_getaddr: getaddrinfo on its own thread, answering
 * through the context's receiver on the loop); its addresses are kept for TG_ORIGIN_TTL_MS and
 * refreshed in the background when a new connection is wanted after that, the old addresses
 * serving meanwhile. A failed refresh keeps the old addresses and tries again after
 * TG_ORIGIN_RETRY_MS. */
#ifndef TG_UPSTREAM_ORIGIN_H
#define TG_UPSTREAM_ORIGIN_H

#include <h2o.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define TG_ORIGIN_TTL_MS 60000  /* resolved addresses are used this long before a refresh */
#define TG_ORIGIN_RETRY_MS 5000 /* a failed refresh is tried again after this long */
#define TG_ORIGIN_MAX_ADDRS 8   /* addresses kept per origin, in the resolver's order */

typedef struct tg_origin tg_origin_t;
typedef struct tg_origins tg_origins_t;

struct tg_origin {
    tg_origins_t *set;
    char *key;       /* "https://host:port": the pool's key */
    char *host;      /* the host without brackets, NUL-terminated: the lookup, SNI and verification name */
    char *authority; /* "host[:port]" as in the URL: the Host header */
    size_t authority_len;
    uint16_t port;
    uint8_t tls;     /* https:// */
    uint8_t numeric; /* an address literal: no lookup ever */
    struct sockaddr_storage addrs[TG_ORIGIN_MAX_ADDRS];
    socklen_t addrlens[TG_ORIGIN_MAX_ADDRS];
    size_t n_addrs;
    size_t preferred;    /* the address that last took a connection: tried first */
    uint64_t refresh_at; /* loop time (ms) after which the next new connection starts a lookup */
    const char *error;   /* why the last lookup found no address (static text), or NULL */
    h2o_hostinfo_getaddr_req_t *lookup; /* the lookup in flight, or NULL */
    h2o_linklist_t waiters; /* the client's transfers waiting for a first address */
    h2o_linklist_t idle;    /* the client's idle connections to this origin */
};

struct tg_origins {
    h2o_context_t *ctx;
    tg_origin_t **v;
    size_t n;
    /** Called on the loop when a lookup of O ended: ERR is NULL when O has addresses, else the
     *  resolver's reason. */
    void (*on_resolved)(tg_origin_t *o, const char *err);
};

/** The origin of URL (http or https), created on first use; NULL when out of memory. */
tg_origin_t *tg_origin_get(tg_origins_t *s, const h2o_url_t *url);
/** Starts a lookup when O's addresses are missing or due for a refresh and none is running.
 *  Returns 1 when O has addresses to connect to now, 0 when the caller must wait for on_resolved,
 *  -1 when O has none and its last lookup failed less than TG_ORIGIN_RETRY_MS ago (O->error says
 *  why). */
int tg_origin_ready(tg_origin_t *o);
/** Fills *SS from a numeric IPv4/IPv6 HOST and PORT; -1 when HOST is not an address literal. */
int tg_origin_parse_numeric(h2o_iovec_t host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);
/** Cancels lookups and frees every origin (their idle lists must be empty). */
void tg_origins_dispose(tg_origins_t *s);

#endif
