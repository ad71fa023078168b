# One generated header, harness/version.h, carries project(VERSION): tpmlab
# --version, run.json, bundles, the man page and the Python module read it
# from there (tpmlab::version, a header-only target).
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in ${PROJECT_BINARY_DIR}/generated/harness/version.h @ONLY)
add_library(harness_version INTERFACE)
add_library(tpmlab::version ALIAS harness_version)
target_include_directories(harness_version INTERFACE $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/generated>)
