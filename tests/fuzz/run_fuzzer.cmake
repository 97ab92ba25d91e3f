# run_fuzzer.cmake - builds a libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined) and runs it for a bounded time on a
# copy of its seed corpus. Fails on any finding (crash, leak, sanitizer
# report, timeout) and prints how many inputs it ran.
#   cmake -DCLANG=... -DNAME=... -DSOURCES="a.c;b.c" -DINCLUDES="dir;dir" [-DDEFINES=...]
#         [-DSEED_DIR=...] -DSECONDS=20 -DWORK_DIR=... -P run_fuzzer.cmake
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
execute_process(
  COMMAND ${CLANG} -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined
          -fno-sanitize-recover=all ${defs} ${incs} ${SOURCES} -o ${WORK_DIR}/${NAME}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building ${NAME} failed:\n${err}")
endif()
execute_process(
  COMMAND ${WORK_DIR}/${NAME} -max_total_time=${SECONDS} -max_len=4096 -timeout=10
          -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=${WORK_DIR}/
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
message(STATUS "${NAME}: ${done}s, no findings")
