/* GET /healthz on the persister: 200 once it serves requests (it publishes before it listens). */
#include "store/api.h"

void tg_api_healthz(tg_api_req_t *r)
{
    tg_api_send(r, 200, json_pack("{s:s}", "status", "ok"));
}
