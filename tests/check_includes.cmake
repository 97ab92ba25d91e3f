cmake_minimum_required(VERSION 3.21)
# check_includes.cmake - the core (runtime/) and the compiler (idl/) include
# only the C library and the project's own headers; only posix/ and win32/
# include OS headers. The one exception is the public COM header, which is
# the system's <objbase.h> on Windows by design.
#   cmake -DSOURCE_DIR=... -P check_includes.cmake
set(allowed assert.h ctype.h errno.h float.h inttypes.h limits.h locale.h math.h
    setjmp.h signal.h stdalign.h stdarg.h stdatomic.h stdbool.h stddef.h stdint.h
    stdio.h stdlib.h stdnoreturn.h string.h time.h uchar.h wchar.h)
set(exceptions "runtime/include/shmcom/comtypes.h:objbase.h")

file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR}
  ${SOURCE_DIR}/runtime/*.c ${SOURCE_DIR}/runtime/*.h
  ${SOURCE_DIR}/idl/*.c ${SOURCE_DIR}/idl/*.h)
set(bad "")
foreach(f IN LISTS files)
  file(STRINGS ${SOURCE_DIR}/${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]*<")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*<([^>]*)>.*" "\\1" h "${line}")
    if(h IN_LIST allowed OR "${f}:${h}" IN_LIST exceptions)
      continue()
    endif()
    string(APPEND bad "  ${f}: <${h}>\n")
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "OS headers outside posix/ and win32/:\n${bad}"
                      "Reach the OS through runtime/platform.h.")
endif()
list(LENGTH files n)
message(STATUS "check_includes: ${n} files include only the C library")
