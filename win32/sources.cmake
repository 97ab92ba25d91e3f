# The Windows platform layer (mingw-w64; tested under Wine).
set(SHMCOM_PLATFORM_SOURCES
  errmap.c
  misc.c
  proc.c
  region.c
  security.c
  thread.c
  wait_sem.c
)
