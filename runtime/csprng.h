/*
 * csprng.h - fast unguessable random bytes for identifiers (see csprng.c).
 */
#ifndef SHMCOM_RUNTIME_CSPRNG_H
#define SHMCOM_RUNTIME_CSPRNG_H

#include "shmcom/shmcom.h"

#include <stddef.h>
#include <stdint.h>

/* Fills out with n random bytes. Fails only if the OS generator could not
 * seed the key. */
HRESULT shmc_random(void *out, size_t n);

/* A non-zero random 64-bit value, or 0 if the generator failed. */
uint64_t shmc_random_u64(void);

#endif /* SHMCOM_RUNTIME_CSPRNG_H */
