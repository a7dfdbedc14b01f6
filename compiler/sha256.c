/*
 * sha256.c - the model source's SHA-256 as lowercase hex, for the blob header;
 * the digest itself is the runtime's (runtime/sha256.c, engram_sha256).
 */
#include <stdio.h>

#include "engram_rt.h"
#include "sema_internal.h"

void sema_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t d[32];
    engram_sha256(data, n, d);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}
