# check_install.cmake - installs the build into a scratch prefix, then builds
# a user's program against it twice: with find_package(shmcom) (shared and
# static targets, and shmcom_add_idl with the installed shmidl) and with
# pkg-config, and runs each.
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... [-DCC=cc] -P check_install.cmake
# Cross-built for Windows (the mingw build): the user's program is built with
# the same toolchain file and run with the emulator (Wine); the package's
# shmidl must still run here, on the build machine.
#   ... -DTOOLCHAIN_FILE=... -DEMULATOR=wine -DCC=x86_64-w64-mingw32-gcc -P check_install.cmake
cmake_minimum_required(VERSION 3.21)
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
if(NOT CC)
  set(CC cc)
endif()
set(cross_args "")
set(exe_suffix "")
if(TOOLCHAIN_FILE)
  set(cross_args -DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN_FILE})
  set(exe_suffix .exe)
endif()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

# run_exe(EXE EXPECTED): runs a program of the user's (under the emulator if
# any) and compares the line it prints.
function(run_exe exe expected)
  run(${EMULATOR} ${exe})
  string(REPLACE "\r" "" out "${out}")
  string(STRIP "${out}" out)
  if(NOT out STREQUAL expected)
    message(FATAL_ERROR "${exe} printed '${out}', not '${expected}'")
  endif()
  get_filename_component(name ${exe} NAME)
  message(STATUS "${name}: ${out}")
endfunction()

# configure_consumer(DIR ARGS...): configures the user's project; checks
# which shmidl the package chose (the consumer prints it).
function(configure_consumer dir shmidl)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/consumer -B ${dir} ${cross_args}
      -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release ${ARGN})
  if(NOT out MATCHES "consumer: shmidl is ([^\n]*)")
    message(FATAL_ERROR "the consumer did not say which shmidl it uses:\n${out}")
  endif()
  file(REAL_PATH "${CMAKE_MATCH_1}" got)
  file(REAL_PATH "${shmidl}" want)
  if(NOT got STREQUAL want)
    message(FATAL_ERROR "the consumer uses shmidl ${got}, not ${want}")
  endif()
endfunction()

set(expected "{0000000C-0000-0000-C000-000000000046} RPC_E_SERVER_DIED")

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
file(GLOB_RECURSE config ${prefix}/*/shmcomConfig.cmake)
if(NOT config)
  message(FATAL_ERROR "no shmcomConfig.cmake under ${prefix}")
endif()
get_filename_component(cmakedir ${config} DIRECTORY)
get_filename_component(libdir ${cmakedir}/../.. ABSOLUTE)
set(files ${cmakedir}/shmcomConfigVersion.cmake ${cmakedir}/shmcomTargets.cmake
          ${cmakedir}/shmcomIdl.cmake ${libdir}/pkgconfig/shmcom.pc ${prefix}/bin/shmidl)
foreach(h shmcom.h comtypes.h export.h proxystub.h)
  list(APPEND files ${prefix}/include/shmcom/${h})
endforeach()
if(TOOLCHAIN_FILE)
  # the DLL, its import library, the static library
  list(APPEND files ${prefix}/bin/libshmcom.dll ${libdir}/libshmcom.dll.a
              ${libdir}/libshmcom_static.a)
else()
  list(APPEND files ${libdir}/libshmcom.so ${libdir}/libshmcom.a)
endif()
foreach(f IN LISTS files)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()
# the package's shmidl is a program for this machine, also in a cross build
run(${prefix}/bin/shmidl --version)

# find_package: shared, static, shmcom_add_idl
configure_consumer(${WORK_DIR}/consumer ${prefix}/bin/shmidl)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
foreach(exe consumer_shared consumer_static)
  run_exe(${WORK_DIR}/consumer/${exe}${exe_suffix} "${expected}")
endforeach()
run_exe(${WORK_DIR}/consumer/consumer_idl${exe_suffix}
        "IHello {1B2C3D4E-0000-4000-8000-00000000C0DE} 4 20")
# SHMCOM_SHMIDL names another shmidl (configured only)
file(COPY ${prefix}/bin/shmidl DESTINATION ${WORK_DIR}/other)
configure_consumer(${WORK_DIR}/consumer_other ${WORK_DIR}/other/shmidl
                   -DSHMCOM_SHMIDL=${WORK_DIR}/other/shmidl)

# pkg-config (only the package's .pc file: PKG_CONFIG_LIBDIR)
set(ENV{PKG_CONFIG_LIBDIR} ${libdir}/pkgconfig)
unset(ENV{PKG_CONFIG_PATH})
run(pkg-config --cflags --libs shmcom)
string(STRIP "${out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
set(pc_exe ${WORK_DIR}/pc/consumer_pc${exe_suffix})
file(MAKE_DIRECTORY ${WORK_DIR}/pc)
run(${CC} -o ${pc_exe} ${SOURCE_DIR}/tests/install/consumer/main.c ${flags})
if(TOOLCHAIN_FILE)
  file(COPY ${prefix}/bin/libshmcom.dll DESTINATION ${WORK_DIR}/pc) # next to the program
else()
  set(ENV{LD_LIBRARY_PATH} ${libdir})
endif()
run_exe(${pc_exe} "${expected}")
message(STATUS "check_install: find_package (shared, static), shmcom_add_idl, SHMCOM_SHMIDL "
               "and pkg-config builds work")
