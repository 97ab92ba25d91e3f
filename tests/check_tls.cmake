cmake_minimum_required(VERSION 3.21)
# check_tls.cmake - the shared library reaches its thread-local variables
# without __tls_get_addr: none of its relocations belongs to the dynamic
# TLS models (DTPMOD, DTPOFF, TLSDESC), which a plain _Thread_local in the
# runtime would bring (use SHMC_THREAD_LOCAL, runtime/platform.h).
#   cmake -DREADELF=... -DLIBRARY=.../libshmcom.so -P check_tls.cmake
execute_process(COMMAND ${READELF} -rW ${LIBRARY} OUTPUT_VARIABLE relocs RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${READELF} -rW ${LIBRARY} failed (${rc})")
endif()
string(REGEX MATCHALL "[^\n]*(DTPMOD|DTPOFF|TLSDESC)[^\n]*" dynamic "${relocs}")
if(dynamic)
  string(REPLACE ";" "\n" dynamic "${dynamic}")
  message(FATAL_ERROR "dynamic-model TLS relocations in ${LIBRARY}:\n${dynamic}\n"
                      "Declare the runtime's thread-local variables SHMC_THREAD_LOCAL.")
endif()
string(REGEX MATCHALL "TPOFF" static_tls "${relocs}")
list(LENGTH static_tls n)
message(STATUS "${LIBRARY}: ${n} initial-exec TLS relocations, none dynamic")
