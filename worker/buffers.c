/* The worker's recycling buffer prototype (worker/buffers.h). */
#include "worker/buffers.h"

h2o_buffer_prototype_t tg_buffer_prototype = {
    {512}, {H2O_SOCKET_INITIAL_INPUT_BUFFER_SIZE * 2}, &h2o_socket_buffer_mmap_settings};
