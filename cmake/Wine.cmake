# Running the Windows build's tests under Wine: its own prefix in the build
# tree, one persistent wineserver for the whole run (started and stopped by
# the CTest fixtures "wine"), no debug noise. The daemon gets /dev/null for
# stdin/stdout/stderr, or it would hold ctest's pipes open forever.
# Sets SHMCOM_TEST_ENV for every test and sample registered afterwards.
set(SHMCOM_TEST_ENV "")
if(CMAKE_CROSSCOMPILING AND WIN32)
  set(SHMCOM_WINEPREFIX ${PROJECT_BINARY_DIR}/wineprefix)
  find_program(SHMCOM_WINESERVER NAMES wineserver
    PATHS /usr/lib/wine /usr/lib/x86_64-linux-gnu/wine)
  find_program(SHMCOM_WINEBOOT NAMES wineboot)
  if(NOT SHMCOM_WINE OR NOT SHMCOM_WINESERVER OR NOT SHMCOM_WINEBOOT)
    message(WARNING "shmcom: wine, wineserver or wineboot not found; "
                    "the tests of this build cannot run here")
  else()
    set(SHMCOM_TEST_ENV WINEPREFIX=${SHMCOM_WINEPREFIX} WINEDEBUG=-all)
    add_test(NAME wine_start COMMAND sh -c
      "mkdir -p '${SHMCOM_WINEPREFIX}' && '${SHMCOM_WINESERVER}' -p </dev/null >/dev/null 2>&1 && '${SHMCOM_WINEBOOT}' -i </dev/null >/dev/null 2>&1")
    add_test(NAME wine_stop COMMAND sh -c
      "'${SHMCOM_WINESERVER}' -k </dev/null >/dev/null 2>&1 || true")
    set_tests_properties(wine_start PROPERTIES FIXTURES_SETUP wine
      ENVIRONMENT "${SHMCOM_TEST_ENV}" TIMEOUT 300)
    set_tests_properties(wine_stop PROPERTIES FIXTURES_CLEANUP wine
      ENVIRONMENT "${SHMCOM_TEST_ENV}")
  endif()
endif()
