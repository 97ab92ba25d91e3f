# run_fuzzer.cmake - builds a libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time on a
# copy of its seed corpus. Fails on any finding (crash, leak, sanitizer
# report, timeout) and prints what it reached: runs, coverage (cov: edges,
# ft: features) and libFuzzer's final stats.
#   cmake -DCLANG=... -DNAME=... -DSOURCES="a.c;b.c" -DINCLUDES="dir;dir" [-DDEFINES=...]
#         [-DLIBS="pthread;rt"] [-DSEED_DIR=...] [-DDICT=file] [-DMAX_LEN=4096]
#         -DSECONDS=20 -DWORK_DIR=... -P run_fuzzer.cmake
# A finding leaves WORK_DIR/crash-* (or leak-*, timeout-*); replay it with
# WORK_DIR/NAME FILE.
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/corpus)
if(SEED_DIR)
  file(GLOB seeds ${SEED_DIR}/*)
  file(COPY ${seeds} DESTINATION ${WORK_DIR}/corpus)
endif()
set(incs "")
foreach(d IN LISTS INCLUDES)
  list(APPEND incs -I${d})
endforeach()
set(defs "")
foreach(d IN LISTS DEFINES)
  list(APPEND defs -D${d})
endforeach()
set(libs "")
foreach(l IN LISTS LIBS)
  list(APPEND libs -l${l})
endforeach()
set(extra "")
if(DICT)
  list(APPEND extra -dict=${DICT})
endif()
if(NOT MAX_LEN)
  set(MAX_LEN 4096)
endif()
execute_process(
  COMMAND ${CLANG} -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined
          -fno-sanitize-recover=all ${defs} ${incs} ${SOURCES} ${libs} -o ${WORK_DIR}/${NAME}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building ${NAME} failed:\n${err}")
endif()
execute_process(
  COMMAND ${WORK_DIR}/${NAME} -max_total_time=${SECONDS} -max_len=${MAX_LEN} -timeout=10
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${WORK_DIR}/ ${extra}
          ${WORK_DIR}/corpus
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCH "Done [0-9]+ runs in [0-9]+ second" done "${err}")
if(NOT rc EQUAL 0)
  string(LENGTH "${err}" len)
  if(len GREATER 6000)
    math(EXPR start "${len} - 6000")
    string(SUBSTRING "${err}" ${start} 6000 err)
  endif()
  message(FATAL_ERROR "${NAME} found a problem (see ${WORK_DIR}/crash-*):\n${err}")
endif()
if(NOT done)
  message(FATAL_ERROR "${NAME} did not report its runs:\n${err}")
endif()
# what it reached: the last status line's coverage, and the final stats
string(REGEX MATCHALL "cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[KM]?b" covs "${err}")
set(cov "")
if(covs)
  list(GET covs -1 cov)
endif()
string(REGEX MATCHALL "stat::[a-z_]+: +[0-9]+" stats "${err}")
string(REPLACE ";" ", " stats "${stats}")
message(STATUS "${NAME}: ${done}s, no findings; ${cov}; ${stats}")
