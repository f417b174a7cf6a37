/* The lean upstream client's origins and their addresses (upstream_origin.h). */
#include "worker/upstream_origin.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/put.h"

/* HOST without the brackets of an IPv6 literal. */
static h2o_iovec_t bare_host(h2o_iovec_t host)
{
    if (host.len >= 2 && host.base[0] == '[' && host.base[host.len - 1] == ']')
        return h2o_iovec_init(host.base + 1, host.len - 2);
    return host;
}

int tg_origin_parse_numeric(h2o_iovec_t host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
    char name[INET6_ADDRSTRLEN];
    host = bare_host(host);
    if (host.len == 0 || host.len >= sizeof(name))
        return -1;
    memcpy(name, host.base, host.len);
    name[host.len] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, name, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, name, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof(*v6);
        return 0;
    }
    return -1;
}

static void origin_free(tg_origin_t *o)
{
    if (!o)
        return;
    if (o->lookup)
        h2o_hostinfo_getaddr_cancel(o->lookup);
    free(o->key);
    free(o->host);
    free(o->authority);
    free(o);
}

tg_origin_t *tg_origin_get(tg_origins_t *s, const h2o_url_t *url)
{
    int tls = url->scheme == &H2O_URL_SCHEME_HTTPS;
    uint16_t port = h2o_url_get_port(url);
    h2o_iovec_t host = bare_host(url->host);
    char key[300]; /* "https://" host ":" port, built without printf: this runs on every request */
    const char *scheme = tls ? "https://" : "http://";
    size_t slen = strlen(scheme);
    if (slen + host.len + 1 + 5 >= sizeof(key))
        return NULL;
    char *p = tg_put_mem(key, scheme, slen);
    p = tg_put_mem(p, host.base, host.len);
    *p++ = ':';
    *tg_put_u64(p, port) = '\0';
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i]->key, key) == 0)
            return s->v[i];
    tg_origin_t **grown = realloc(s->v, (s->n + 1) * sizeof(*grown));
    if (!grown)
        return NULL;
    s->v = grown;
    tg_origin_t *o = calloc(1, sizeof(*o));
    if (!o || !(o->key = strdup(key)) || !(o->host = strndup(host.base, host.len)) ||
        !(o->authority = strndup(url->authority.base, url->authority.len))) {
        origin_free(o);
        return NULL;
    }
    o->set = s;
    o->authority_len = url->authority.len;
    o->port = port;
    o->tls = (uint8_t)tls;
    h2o_linklist_init_anchor(&o->waiters);
    h2o_linklist_init_anchor(&o->idle);
    if (tg_origin_parse_numeric(host, port, &o->addrs[0], &o->addrlens[0]) == 0) {
        o->numeric = 1;
        o->n_addrs = 1;
        o->refresh_at = UINT64_MAX;
    }
    s->v[s->n++] = o;
    return o;
}

static void on_lookup(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res, void *data)
{
    tg_origin_t *o = data;
    uint64_t now = h2o_now(o->set->ctx->loop);
    o->lookup = NULL;
    size_t n = 0;
    for (struct addrinfo *ai = errstr ? NULL : res; ai && n < TG_ORIGIN_MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(o->addrs[0]))
            continue;
        memcpy(&o->addrs[n], ai->ai_addr, ai->ai_addrlen);
        o->addrlens[n++] = ai->ai_addrlen;
    }
    o->error = NULL;
    if (n) {
        if (o->n_addrs == 0) /* the first lookup: once per origin and worker */
            tg_info("upstream host %s resolved to %zu address(es)", o->host, n);
        o->n_addrs = n;
        o->preferred = 0;
        o->refresh_at = now + TG_ORIGIN_TTL_MS;
    } else {
        if (!errstr)
            errstr = "no IPv4 or IPv6 address";
        o->error = errstr;
        o->refresh_at = now + TG_ORIGIN_RETRY_MS;
        tg_warn("upstream host %s could not be resolved: %s%s", o->host, errstr,
                o->n_addrs ? " (the previous addresses stay in use)" : "");
    }
    o->set->on_resolved(o, o->n_addrs ? NULL : errstr);
}

int tg_origin_ready(tg_origin_t *o)
{
    if (!o->numeric && !o->lookup && h2o_now(o->set->ctx->loop) >= o->refresh_at) {
        char port[8];
        int plen = snprintf(port, sizeof(port), "%u", o->port);
        o->lookup = h2o_hostinfo_getaddr(&o->set->ctx->receivers.hostinfo_getaddr, h2o_iovec_init(o->host, strlen(o->host)),
                                         h2o_iovec_init(port, (size_t)plen), AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP,
                                         AI_NUMERICSERV, on_lookup, o);
    }
    if (o->n_addrs)
        return 1;
    return o->lookup ? 0 : -1;
}

void tg_origins_dispose(tg_origins_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        origin_free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}
