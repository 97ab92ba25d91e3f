# Cross-build for 64-bit Windows with mingw-w64 (Debian: gcc-mingw-w64-x86-64).
# Programs built here run under Wine: ctest runs each test through
# CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(SHMCOM_MINGW_TRIPLE x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${SHMCOM_MINGW_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${SHMCOM_MINGW_TRIPLE}-g++)
set(CMAKE_RC_COMPILER ${SHMCOM_MINGW_TRIPLE}-windres)

# Libraries, headers and packages come only from the mingw-w64 sysroot and
# from the prefixes named in CMAKE_PREFIX_PATH (installed Windows packages,
# such as an installed shmcom: without them here, find_package would look
# for them under the sysroot only). Programs come from the build machine.
file(TO_CMAKE_PATH "$ENV{CMAKE_PREFIX_PATH}" _shmcom_env_prefixes)
set(CMAKE_FIND_ROOT_PATH /usr/${SHMCOM_MINGW_TRIPLE} ${CMAKE_PREFIX_PATH} ${_shmcom_env_prefixes})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(SHMCOM_WINE NAMES wine wine64)
if(SHMCOM_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SHMCOM_WINE})
endif()
