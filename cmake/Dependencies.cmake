# Every dependency comes from a Debian 12 package (tools/setup installs them).
# tpm2-tss is found by library name, not through pkg-config cflags: those add
# -I/usr/include/tss2, which makes tss2_mu.h warn about its own deprecations.
find_package(PkgConfig REQUIRED)
find_package(OpenSSL 3 REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(LibArchive 3 REQUIRED)  # repro bundles (.tar.gz)
find_package(Threads REQUIRED)
find_package(SOCI REQUIRED)  # the store, over SQLite and PostgreSQL (cmake/FindSOCI.cmake)
find_package(CURL REQUIRED)  # Redfish power (libcurl4-openssl-dev)
pkg_check_modules(LIBUSB REQUIRED IMPORTED_TARGET libusb-1.0)

foreach(lib tss2-esys tss2-mu tss2-rc tss2-sys)
  string(REPLACE "-" "_" var "${lib}")
  find_library(${var}_LIBRARY NAMES ${lib} REQUIRED)
endforeach()
find_path(TSS2_INCLUDE_DIR tss2/tss2_esys.h REQUIRED)

# Installed (cmake/Package.cmake), it is tss2 through pkg-config instead of
# this machine's paths: tpmlabConfig.cmake makes PkgConfig::TPMLAB_TSS2.
add_library(tss2 INTERFACE)
target_include_directories(tss2 SYSTEM INTERFACE $<BUILD_INTERFACE:${TSS2_INCLUDE_DIR}>)
target_link_libraries(tss2 INTERFACE
  $<BUILD_INTERFACE:${tss2_esys_LIBRARY}> $<BUILD_INTERFACE:${tss2_mu_LIBRARY}>
  $<BUILD_INTERFACE:${tss2_rc_LIBRARY}> $<BUILD_INTERFACE:${tss2_sys_LIBRARY}>
  $<INSTALL_INTERFACE:PkgConfig::TPMLAB_TSS2>)
add_library(tpmlab::tss2 ALIAS tss2)
