# Flags every tpmlab target shares, as usage requirements on two INTERFACE targets
# rather than global variables, so a target says what it wants.
# -Werror belongs to the presets and CI (they set it ON), not to a user's
# plain `cmake` build, where a newer compiler's new warning must not stop it.
option(TPMLAB_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

add_library(tpmlab_options INTERFACE)
target_compile_features(tpmlab_options INTERFACE cxx_std_20)

add_library(tpmlab_warnings INTERFACE)
# BUILD_INTERFACE: installed, it is an empty target (the libraries name it
# privately), so a project using tpmlab keeps its own warnings.
target_compile_options(tpmlab_warnings INTERFACE
  $<BUILD_INTERFACE:$<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual>>
  $<BUILD_INTERFACE:$<$<BOOL:${TPMLAB_WARNINGS_AS_ERRORS}>:-Werror>>)
# GCC 12 at -O3 warns about std::string and std::vector copies inlined from
# libstdc++ that cannot happen (GCC PR 105329: -Wrestrict on string appends;
# PR 107852: -Warray-bounds / -Wstringop-overflow / -overread on vector
# inserts); GCC 13 fixed them. Off there, in optimized builds only: the ASan build (debug
# preset) checks the same bounds at run time.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(tpmlab_warnings INTERFACE
    $<BUILD_INTERFACE:$<$<AND:$<COMPILE_LANGUAGE:CXX>,$<CONFIG:Release,MinSizeRel>>:-Wno-restrict
      -Wno-array-bounds -Wno-stringop-overflow -Wno-stringop-overread>>)
endif()
