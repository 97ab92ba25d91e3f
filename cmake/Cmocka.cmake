# Provides the target shmcom_cmocka.
#
# Native builds use the system's cmocka (Debian: libcmocka-dev), found with
# pkg-config. The mingw build cross-compiles cmocka 1.1.5 from Debian's
# source package, fetched at build time by cmake/fetch-cmocka.sh (checked by
# sha256, kept in the build tree, never in git), as a static library built
# with this project's toolchain file.

add_library(shmcom_cmocka INTERFACE)

if(NOT CMAKE_CROSSCOMPILING)
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
  target_link_libraries(shmcom_cmocka INTERFACE PkgConfig::CMOCKA)
  return()
endif()

include(ExternalProject)
set(_cm_dir ${PROJECT_BINARY_DIR}/_deps/cmocka)
set(_cm_prefix ${_cm_dir}/install)
set(_cm_lib ${_cm_prefix}/lib/libcmocka-static.a)

ExternalProject_Add(cmocka_cross
  PREFIX ${_cm_dir}
  SOURCE_DIR ${_cm_dir}/source
  DOWNLOAD_COMMAND sh ${PROJECT_SOURCE_DIR}/cmake/fetch-cmocka.sh ${_cm_dir} ${_cm_dir}/source
  CMAKE_ARGS
    -DCMAKE_TOOLCHAIN_FILE=${CMAKE_TOOLCHAIN_FILE}
    -DCMAKE_INSTALL_PREFIX=${_cm_prefix}
    -DCMAKE_INSTALL_LIBDIR=lib
    -DCMAKE_BUILD_TYPE=Release
    -DWITH_STATIC_LIB=ON
    -DWITH_EXAMPLES=OFF
    -DUNIT_TESTING=OFF
    -DPICKY_DEVELOPER=OFF
  BUILD_BYPRODUCTS ${_cm_lib}
  UPDATE_COMMAND ""
  LOG_DOWNLOAD ON
  LOG_CONFIGURE ON
  LOG_BUILD ON
  LOG_INSTALL ON
  LOG_OUTPUT_ON_FAILURE ON)

file(MAKE_DIRECTORY ${_cm_prefix}/include)
add_library(shmcom_cmocka_lib STATIC IMPORTED GLOBAL)
set_target_properties(shmcom_cmocka_lib PROPERTIES
  IMPORTED_LOCATION ${_cm_lib}
  INTERFACE_INCLUDE_DIRECTORIES ${_cm_prefix}/include)
add_dependencies(shmcom_cmocka_lib cmocka_cross)
target_link_libraries(shmcom_cmocka INTERFACE shmcom_cmocka_lib)
