/* The request path of a worker: dispatch by path, then for model calls authenticate, scan the
 * body, choose an upstream key, relay the answer, capture usage and settle. */
#ifndef TG_PROXY_H
#define TG_PROXY_H

#include <h2o.h>

/** The h2o handler for every request the worker receives. */
int tg_proxy_on_req(h2o_handler_t *self, h2o_req_t *req);
/** Forwards a management request (paths under /x- and /dashboard/, the pages) to the persister. */
int tg_forward_on_req(h2o_req_t *req);
/** Writes the client's address into OUT (CAP bytes). */
void tg_client_ip(h2o_req_t *req, char *out, size_t cap);

#endif
