# check_install.cmake - installs the build into a scratch prefix, then builds
# a user's program against it twice: with find_package(shmcom) (shared and
# static targets) and with pkg-config, and runs each.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -P check_install.cmake
cmake_minimum_required(VERSION 3.21)
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(expected "{0000000C-0000-0000-C000-000000000046} RPC_E_SERVER_DIED")

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
foreach(f include/shmcom/shmcom.h include/shmcom/comtypes.h include/shmcom/export.h
          include/shmcom/proxystub.h bin/shmidl)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
file(GLOB_RECURSE pc ${prefix}/*/shmcom.pc)
file(GLOB_RECURSE config ${prefix}/*/shmcomConfig.cmake)
if(NOT pc OR NOT config)
  message(FATAL_ERROR "no shmcom.pc or shmcomConfig.cmake under ${prefix}")
endif()

# find_package
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
foreach(exe consumer_shared consumer_static)
  run(${WORK_DIR}/consumer/${exe})
  string(STRIP "${out}" out)
  if(NOT out STREQUAL expected)
    message(FATAL_ERROR "${exe} printed '${out}'")
  endif()
endforeach()

run(${WORK_DIR}/consumer/consumer_idl)
string(STRIP "${out}" out)
if(NOT out STREQUAL "IHello {1B2C3D4E-0000-4000-8000-00000000C0DE} 4 20")
  message(FATAL_ERROR "consumer_idl printed '${out}'")
endif()
run(${prefix}/bin/shmidl --version)

# pkg-config
get_filename_component(pcdir ${pc} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pcdir})
run(pkg-config --cflags --libs shmcom)
string(STRIP "${out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(cc -o ${WORK_DIR}/consumer_pc ${SOURCE_DIR}/tests/install/consumer/main.c ${flags})
get_filename_component(libdir ${pc} DIRECTORY)
get_filename_component(libdir ${libdir} DIRECTORY)
set(ENV{LD_LIBRARY_PATH} ${libdir})
run(${WORK_DIR}/consumer_pc)
string(STRIP "${out}" out)
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "consumer_pc printed '${out}'")
endif()
message(STATUS "check_install: find_package (shared, static), shmcom_add_idl and pkg-config builds work")
