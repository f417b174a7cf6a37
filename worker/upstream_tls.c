/* The upstream client's TLS (upstream_tls.h).
 *
 * libh2o 2.2.5's client handshake (h2o_socket_ssl_handshake with a server name) sends the name as
 * SNI but verifies little by itself: it reads the chain's verification result only when the
 * handshake fails, and its own name check only runs when the handshake's last flight came from
 * the server (not in TLS 1.3) and knows no IP addresses. So the context here verifies the peer
 * (SSL_VERIFY_PEER aborts the handshake on a bad chain) and, through a certificate verification
 * callback, checks the name too: OpenSSL's X509_VERIFY_PARAM host (or IP address) check against
 * the SNI name, run as part of the chain's verification, so a mismatch fails the handshake with
 * OpenSSL's own reason ("hostname mismatch"). h2o's weaker name check is then redundant: its
 * "name mismatch" verdict is disregarded (as h2o's own http1client does when it is told to).
 *
 * Resumption: h2o keeps client sessions in a cache on the context, keyed "name:port", storing the
 * session it holds when the handshake ends and offering it on the next handshake to that key. A
 * TLS 1.3 server sends its tickets after the handshake, so that session cannot be resumed; the
 * new-session callback here stores each ticket-bearing session under the same key instead. */
#include "worker/upstream_tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>

#define SESSION_CACHE_SIZE 256      /* resumable sessions kept, one per host:port */
#define SESSION_CACHE_MS 3600000    /* a kept session is offered for at most an hour */

/* Verifies the chain with the name the client sent as SNI as the expected host (or address). */
static int verify_peer(X509_STORE_CTX *sctx, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    const char *name = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    if (!name) {
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(sctx);
    if (X509_VERIFY_PARAM_set1_ip_asc(param, name) != 1 && X509_VERIFY_PARAM_set1_host(param, name, 0) != 1) {
        X509_STORE_CTX_set_error(sctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return X509_verify_cert(sctx);
}

/* A session the server made resumable (a TLS 1.3 ticket, or the end of a TLS 1.2 handshake): kept
 * in h2o's cache under h2o's key. h2o's BIO carries the socket (as h2o's own callbacks use it). */
static int on_new_session(SSL *ssl, SSL_SESSION *session)
{
    h2o_cache_t *cache = h2o_socket_ssl_get_session_cache(SSL_get_SSL_CTX(ssl));
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    h2o_socket_t *sock = BIO_get_data(SSL_get_rbio(ssl));
    struct sockaddr_storage sa;
    int32_t port;
    if (!cache || !name || !sock || h2o_socket_getpeername(sock, (struct sockaddr *)&sa) == 0 ||
        (port = h2o_socket_getport((struct sockaddr *)&sa)) == -1)
        return 0;
    char key[300];
    int len = snprintf(key, sizeof(key), "%s:%u", name, (unsigned)port);
    if (len < 0 || (size_t)len >= sizeof(key))
        return 0;
    h2o_cache_set(cache, h2o_now(h2o_socket_get_loop(sock)), h2o_iovec_init(key, (size_t)len),
                  h2o_cache_calchash(key, (size_t)len), h2o_iovec_init(session, 1));
    return 1; /* the cache holds the reference now */
}

static void ossl_reason(char *err, size_t errlen)
{
    unsigned long e = ERR_get_error();
    if (e)
        ERR_error_string_n(e, err, errlen);
    ERR_clear_error();
}

int tg_tls_add_ca_file(SSL_CTX *ctx, const char *ca_file, char *err, size_t errlen)
{
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) == 1)
        return 0;
    char why[160] = "no PEM certificate in it";
    ossl_reason(why, sizeof(why));
    snprintf(err, errlen, "upstream.ca_file %s: cannot load CA certificates: %s", ca_file, why);
    return -1;
}

SSL_CTX *tg_tls_client_ctx_create(const char *ca_file, char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create the TLS client context");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || SSL_CTX_set_default_verify_paths(ctx) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1) != 0) {
        char why[160] = "unknown error";
        ossl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot set up the TLS client context: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file && tg_tls_add_ca_file(ctx, ca_file, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_peer, NULL);
    /* h2o keeps the sessions (keyed by SNI name and port) and offers them on the next handshake */
    h2o_socket_ssl_set_session_cache(
        ctx, h2o_cache_create(0, SESSION_CACHE_SIZE, SESSION_CACHE_MS, h2o_socket_ssl_destroy_session_cache_entry));
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    return ctx;
}

void tg_tls_client_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx); /* the session cache goes with it (h2o's ex_data destructor) */
}

const char *tg_tls_handshake_error(const char *h2o_err)
{
    if (h2o_err == h2o_socket_error_ssl_cert_name_mismatch)
        return NULL; /* the name was checked during the chain's verification (see the top) */
    return h2o_err;
}
