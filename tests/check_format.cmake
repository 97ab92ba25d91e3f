cmake_minimum_required(VERSION 3.21)
# check_format.cmake - every C file is formatted with the repository's
# .clang-format.   cmake -DSOURCE_DIR=... -DCLANG_FORMAT=... -P check_format.cmake
file(GLOB_RECURSE files
  ${SOURCE_DIR}/runtime/*.[ch] ${SOURCE_DIR}/posix/*.[ch] ${SOURCE_DIR}/win32/*.[ch]
  ${SOURCE_DIR}/idl/*.[ch] ${SOURCE_DIR}/tests/*.[ch] ${SOURCE_DIR}/samples/*.[ch])
list(FILTER files EXCLUDE REGEX "/tests/idl/golden/")
execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${files}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "not formatted with .clang-format (run scripts/format.sh):\n${err}")
endif()
list(LENGTH files n)
message(STATUS "check_format: ${n} files formatted")
