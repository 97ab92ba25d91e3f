/*
 * framelimits.h - the largest frame (runtime/bounds.h, SHMC_MAX_FRAME)
 * through a real proxy: a call exactly at the limit goes through, one
 * byte more is refused where it is made, and the proxy keeps working.
 * Shared by the in-process and the cross-process call tests.
 */
#ifndef SHMCOM_FRAMELIMITS_H
#define SHMCOM_FRAMELIMITS_H

#include "calltest.h"

void framelimits_check(ICallee *p);

#endif /* SHMCOM_FRAMELIMITS_H */
