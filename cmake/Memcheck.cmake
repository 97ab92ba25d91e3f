# Memcheck.cmake - SHMCOM_MEMCHECK: every test program (shmcom_program_test)
# runs under Valgrind's memcheck, and so do the processes it starts (the
# cross-process tests re-run their own executable as the child, the samples
# start their plugins and producers): the server side of a cross-process
# call runs only there. A test fails on any memory error or definite leak,
# in any of its processes: valgrind's exit code, and its error markers in
# the output (a child's exit code is not always judged, and a test that
# passes by what it prints ignores the exit code).
#
# Except test_xproc's crowd (--trace-children-skip-by-arg=crowd): the 8
# client processes of many_clients_one_object, 32 threads that make
# 100,000 calls into one server. Eight Valgrind processes next to the
# server's on 2 CPUs made the test take 97 s, and at a load average of 28 a
# client failed to unmarshal its proxy (the runtime waits 10 s for a
# connection to be accepted); the server side still runs under Valgrind,
# and the client side is the same code that every other test's main
# process runs under it.
#
# --fair-sched=yes: Valgrind runs one thread of a process at a time, and
# with its default lock a thread that spins without system calls (the
# hostile-peer test's frame scribbler, the runtime's spin-waits) can take
# the lock back at every switch and starve the others for good: the
# hostile peer's first scribbled request then got no answer for 240 s
# when test_xproc ran whole. The fair (ticket) lock hands the threads the
# CPU in turn.
#
# Valgrind knows nothing of futexes on shared memory as synchronisation;
# that matters only to its thread checkers, not to memcheck. Suppressions,
# each with its reason: tests/valgrind.supp.
find_program(SHMCOM_VALGRIND NAMES valgrind)
if(NOT SHMCOM_VALGRIND)
  message(FATAL_ERROR "SHMCOM_MEMCHECK needs valgrind (Debian: valgrind)")
endif()
set(SHMCOM_TEST_LAUNCHER
  ${SHMCOM_VALGRIND} --tool=memcheck -q --fair-sched=yes --trace-children=yes
  --trace-children-skip-by-arg=crowd
  --error-exitcode=99 --leak-check=full --show-leak-kinds=definite
  --errors-for-leak-kinds=definite --num-callers=40
  --error-markers=SHMCOM-MEMCHECK-ERROR-BEGIN,SHMCOM-MEMCHECK-ERROR-END
  --suppressions=${PROJECT_SOURCE_DIR}/tests/valgrind.supp)
set(SHMCOM_TEST_FAIL_REGEX "SHMCOM-MEMCHECK-ERROR-BEGIN")
# Every process runs tens of times slower: call timeouts that calls must
# stay within (and the bounds around one that must fire) are 10 times
# longer; what the tests assert stays the same.
set(SHMCOM_TEST_TIME_SCALE 10)
set(SHMCOM_TEST_TIMEOUT 1200)
# frame_limits (test_calls, test_xproc) moves 256 MiB frames: 12 s
# natively, past 2 minutes under TSan, and Valgrind is slower still (and
# keeps shadow memory for each frame). Its bounds are checked natively,
# under ASan and under Wine.
set(SHMCOM_TEST_SKIP frame_limits)
