# The POSIX platform layer (Linux: futex, pidfd). Variants are files:
# another POSIX system gets its own wait_*.c and proc_*.c here.
set(SHMCOM_PLATFORM_SOURCES
  errmap.c
  event.c
  misc.c
  proc.c
  region.c
  sigbus.c
  thread.c
  wait_futex.c
)
