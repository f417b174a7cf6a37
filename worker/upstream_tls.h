/* TLS for the upstream client: the lean backend's client SSL_CTX (one per worker, made once) and
 * the extra CA file (upstream.ca_file) that both backends trust besides the system store. */
#ifndef TG_UPSTREAM_TLS_H
#define TG_UPSTREAM_TLS_H

#include <h2o.h>
#include <openssl/ssl.h>
#include <stddef.h>

/** A client context: TLS 1.2 or later, the peer's chain verified against the system CA store
 *  (plus CA_FILE when not NULL) and its name against the SNI name the handshake sends, ALPN
 *  "http/1.1" only, and a session cache for resumption. NULL with *ERR filled on failure. */
SSL_CTX *tg_tls_client_ctx_create(const char *ca_file, char *err, size_t errlen);
void tg_tls_client_ctx_free(SSL_CTX *ctx);

/** Adds the PEM certificates of CA_FILE to CTX's trust store; -1 with *ERR filled on failure.
 *  libcurl's SSL_CTX callback uses it too, so both backends trust the same CAs. */
int tg_tls_add_ca_file(SSL_CTX *ctx, const char *ca_file, char *err, size_t errlen);

/** The outcome of h2o_socket_ssl_handshake's callback, given the error h2o reported: NULL when the
 *  peer is verified, else why not in words. */
const char *tg_tls_handshake_error(const char *h2o_err);

#endif
