# shmcom_add_idl(<target> FILE.idl... [OUTPUT_DIR dir] [INCLUDE_DIRS dir...])
#
# Runs shmidl on each FILE.idl and adds the generated FILE_p.c (the proxies
# and stubs, with FILE_ProxyFileInfo) to <target>, whose include path gets
# the folder of the generated FILE.h. The outputs are rebuilt when the .idl
# file, a file it imports (through shmidl's depfile) or shmidl changes.
#
# shmidl is the executable target shmcom::shmidl, always a program for the
# build machine: in shmcom's own build, the one it builds (in a cross build,
# a second time with the build machine's compiler) or the one SHMCOM_SHMIDL
# names; from an installed shmcom, see shmcomConfig.cmake (SHMCOM_SHMIDL,
# else the package's own if it runs here, else shmidl on PATH).
include_guard(GLOBAL)

function(shmcom_add_idl target)
  cmake_parse_arguments(PARSE_ARGV 1 A "" "OUTPUT_DIR" "INCLUDE_DIRS")
  if(NOT TARGET shmcom::shmidl)
    get_property(why GLOBAL PROPERTY SHMCOM_SHMIDL_MISSING)
    if(NOT why)
      set(why "no shmcom::shmidl (find_package(shmcom) first)")
    endif()
    message(FATAL_ERROR "shmcom_add_idl(${target}): ${why}")
  endif()
  if(NOT A_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "shmcom_add_idl(${target}): no .idl file given")
  endif()
  set(outdir ${A_OUTPUT_DIR})
  if(NOT outdir)
    set(outdir ${CMAKE_CURRENT_BINARY_DIR}/shmidl_${target})
  endif()
  file(MAKE_DIRECTORY ${outdir})
  set(flags "")
  foreach(dir IN LISTS A_INCLUDE_DIRS)
    get_filename_component(dir ${dir} ABSOLUTE)
    list(APPEND flags -I ${dir})
  endforeach()
  foreach(idl IN LISTS A_UNPARSED_ARGUMENTS)
    get_filename_component(abs ${idl} ABSOLUTE)
    get_filename_component(base ${idl} NAME_WLE)
    set(h ${outdir}/${base}.h)
    set(c ${outdir}/${base}_p.c)
    set(dep ${outdir}/${base}.d)
    set(depfile_args "")
    if(CMAKE_GENERATOR MATCHES "Ninja|Makefiles")
      set(depfile_args DEPFILE ${dep})
    endif()
    add_custom_command(OUTPUT ${h} ${c}
      COMMAND shmcom::shmidl -o ${outdir} --depfile ${dep} ${flags} ${abs}
      MAIN_DEPENDENCY ${abs}
      DEPENDS shmcom::shmidl $<TARGET_FILE:shmcom::shmidl>
      ${depfile_args}
      COMMENT "shmidl ${idl}"
      VERBATIM)
    target_sources(${target} PRIVATE ${c} ${h})
  endforeach()
  target_include_directories(${target} PUBLIC $<BUILD_INTERFACE:${outdir}>)
endfunction()
