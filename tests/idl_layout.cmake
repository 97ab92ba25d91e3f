# idl_layout.cmake - proves that shmidl's header is layout- and
# name-compatible with widl's: compiles FILE.idl (and the test IDL files it
# imports) with both compilers, builds the probe that shmidl writes
# (--probe) once against each header, runs both and requires identical
# output (sizeof, _Alignof and offsetof of every struct field and vtable
# slot, enum values, constants; a missing COBJMACROS macro fails the build).
#   cmake -DSHMIDL=... -DWIDL=... -DWIDL_IDL_DIR=... -DCC=... [-DWIDL_CFLAGS=...]
#         -DRUNTIME_INCLUDE=... -DIDL_DIR=... -DFILE=name -DWORK_DIR=...
#         [-DEMULATOR=wine] [-DEXE_SUFFIX=.exe] [-DLDFLAGS=-static] -P idl_layout.cmake
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR}/shmidl ${WORK_DIR}/widl)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

file(GLOB idls ${IDL_DIR}/*.idl)
foreach(idl IN LISTS idls)
  run(${SHMIDL} --probe -I ${IDL_DIR} -o ${WORK_DIR}/shmidl ${idl})
  get_filename_component(name ${idl} NAME_WE)
  run(${WIDL} -h -I ${IDL_DIR} -I ${WIDL_IDL_DIR} -o ${WORK_DIR}/widl/${name}.h ${idl})
endforeach()
configure_file(${WORK_DIR}/shmidl/${FILE}_probe.c ${WORK_DIR}/widl/${FILE}_probe.c COPYONLY)

separate_arguments(widl_cflags UNIX_COMMAND "${WIDL_CFLAGS}")
separate_arguments(ldflags UNIX_COMMAND "${LDFLAGS}")
set(sexe ${WORK_DIR}/probe_shmidl${EXE_SUFFIX})
set(wexe ${WORK_DIR}/probe_widl${EXE_SUFFIX})
# shmidl's header is held to the warning flags of generated code
run(${CC} -std=c11 -Wall -Wextra -Wpedantic -Werror -I${WORK_DIR}/shmidl -I${RUNTIME_INCLUDE}
    -o ${sexe} ${WORK_DIR}/shmidl/${FILE}_probe.c ${ldflags})
# widl's is compiled as its users do (it uses extensions)
run(${CC} -std=gnu11 -w -I${WORK_DIR}/widl ${widl_cflags} -o ${wexe}
    ${WORK_DIR}/widl/${FILE}_probe.c ${ldflags})
run(${EMULATOR} ${sexe})
set(sout "${out}")
run(${EMULATOR} ${wexe})
set(wout "${out}")
string(REPLACE "\r" "" sout "${sout}")
string(REPLACE "\r" "" wout "${wout}")
if(NOT sout STREQUAL wout)
  file(WRITE ${WORK_DIR}/shmidl.txt "${sout}")
  file(WRITE ${WORK_DIR}/widl.txt "${wout}")
  message(FATAL_ERROR "layout of ${FILE}.idl differs between shmidl and widl: compare "
                      "${WORK_DIR}/shmidl.txt and ${WORK_DIR}/widl.txt")
endif()
string(REGEX MATCHALL "\n" lines "${sout}")
list(LENGTH lines n)
if(n LESS 10)
  message(FATAL_ERROR "the probe of ${FILE}.idl printed only ${n} lines")
endif()
message(STATUS "${FILE}.idl: ${n} layout facts identical with widl")
