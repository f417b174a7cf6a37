/* libFuzzer target: the YAML config loader (master/config.h): the input is written to a temp file,
 * loaded and disposed. */
#include "master/config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    tg_config_t cfg;
    char *err = NULL;
    if (path[0] == 0) {
        snprintf(path, sizeof path, "/tmp/tg-fuzz-config-%d.yaml", (int)getpid());
    }
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    memset(&cfg, 0, sizeof cfg);
    if (tg_config_load(path, &cfg, &err) == 0)
        tg_config_dispose(&cfg);
    else if (err == NULL)
        abort(); /* a refusal must say why */
    free(err);
    tg_config_dispose(&cfg); /* safe on a zeroed struct, and twice */
    unlink(path);
    return 0;
}
