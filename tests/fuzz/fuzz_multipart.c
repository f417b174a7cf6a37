/* libFuzzer target: the multipart/form-data model extraction (worker/endpoint.h).
 * Input: the Content-Type up to the first '\n', then the body. */
#include "worker/endpoint.h"
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const unsigned char *nl = memchr(data, '\n', size);
    size_t ctn = nl ? (size_t)(nl - data) : size;
    size_t bn = nl ? size - ctn - 1 : 0;
    char *ct = malloc(ctn ? ctn : 1), *body = malloc(bn ? bn : 1);
    memcpy(ct, data, ctn);
    if (bn)
        memcpy(body, nl + 1, bn);
    h2o_iovec_t model;
    if (tg_multipart_model(h2o_iovec_init(body, bn), h2o_iovec_init(ct, ctn), &model) == 0) {
        if (model.len > 0 && (model.base < body || model.base + model.len > body + bn))
            abort(); /* the model must be a span of the body */
    }
    free(ct);
    free(body);
    return 0;
}
