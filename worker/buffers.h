/* The worker's 8 KiB buffer prototype with a long recycle list, for the buffers every proxied
 * request takes and gives back: the client connections' and upstream connections' input, the
 * relays' answers and their send buffers. */
#ifndef TG_WORKER_BUFFERS_H
#define TG_WORKER_BUFFERS_H

#include <h2o.h>

/** h2o's socket prototype keeps only 16 freed buffers for all the loop's sockets, so with dozens
 * of requests in flight most requests took an 8 KiB buffer from malloc and gave it back. This one
 * keeps up to 512 (at most 4 MiB held; one event loop per worker process: no locking needed). */
extern h2o_buffer_prototype_t tg_buffer_prototype;

#endif
