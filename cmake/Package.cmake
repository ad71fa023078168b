# What `cmake --install` gives a project that builds against tpmlab (component
# devel): the static libraries, their headers under include/tpmlab/
# (include/tpmlab/harness/*.h, include/tpmlab/drivers/*.h), tpmlabConfig.cmake
# with tpmlab:: imported targets, and tpmlab.pc. The tpmlab command, its man
# page and the stock models are component cli (harness/cli/CMakeLists.txt).
#
# The libraries are found by walking drivers/ and harness/ rather than listed
# here, so a library added there is installed and exported without a line in
# this file. Included last, when every target exists.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TPMLAB_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/tpmlab)
set(TPMLAB_INSTALL_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR}/tpmlab)

# The library targets defined in DIR and the folders below it.
function(tpmlab_libraries_in dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  set(found)
  foreach(target ${targets})
    get_target_property(type ${target} TYPE)
    if(type MATCHES "^(STATIC|SHARED|INTERFACE)_LIBRARY$")
      list(APPEND found ${target})
    endif()
  endforeach()
  foreach(subdir ${subdirs})
    tpmlab_libraries_in(${subdir} below)
    list(APPEND found ${below})
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

# The interface targets made by cmake/ (options, warnings, tss2, version)
# live in the top folder; the libraries in drivers/ and harness/.
get_property(TPMLAB_TOP_TARGETS DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
set(TPMLAB_EXPORTED)
foreach(target ${TPMLAB_TOP_TARGETS})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    list(APPEND TPMLAB_EXPORTED ${target})
  endif()
endforeach()
tpmlab_libraries_in(${PROJECT_SOURCE_DIR}/drivers TPMLAB_DRIVER_LIBRARIES)
tpmlab_libraries_in(${PROJECT_SOURCE_DIR}/harness TPMLAB_HARNESS_LIBRARIES)
list(APPEND TPMLAB_EXPORTED ${TPMLAB_DRIVER_LIBRARIES} ${TPMLAB_HARNESS_LIBRARIES})

# Each target's public include folders hold drivers/*.h or harness/*.h; they
# install under include/tpmlab, which becomes the imported target's include
# directory. The build keeps using the source (and generated) folders.
set(TPMLAB_HEADER_DIRS)
foreach(target ${TPMLAB_EXPORTED})
  # Exported under the name of its in-tree alias: harness_tpm is tpmlab::tpm.
  string(REGEX REPLACE "^(harness|tpmlab)_" "" export_name ${target})
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT dirs)
    continue()
  endif()
  set(rewritten)
  set(ours FALSE)
  foreach(dir ${dirs})
    if(dir MATCHES "^\\$<")  # already says where it applies
      list(APPEND rewritten "${dir}")
    elseif(dir MATCHES "^(${PROJECT_SOURCE_DIR}|${PROJECT_BINARY_DIR})/")
      list(APPEND rewritten "$<BUILD_INTERFACE:${dir}>")
      list(APPEND TPMLAB_HEADER_DIRS ${dir})
      set(ours TRUE)
    else()
      list(APPEND rewritten "${dir}")
    endif()
  endforeach()
  if(ours)
    list(APPEND rewritten "$<INSTALL_INTERFACE:${TPMLAB_INSTALL_INCLUDEDIR}>")
  endif()
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${rewritten}")
endforeach()
# The generated harness/version.h is added by its BUILD_INTERFACE genex.
list(APPEND TPMLAB_HEADER_DIRS ${PROJECT_BINARY_DIR}/generated)
list(REMOVE_DUPLICATES TPMLAB_HEADER_DIRS)
foreach(dir ${TPMLAB_HEADER_DIRS})
  install(DIRECTORY ${dir}/ DESTINATION ${TPMLAB_INSTALL_INCLUDEDIR} COMPONENT devel
          FILES_MATCHING PATTERN "*.h")
endforeach()

install(TARGETS ${TPMLAB_EXPORTED} EXPORT tpmlabTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT devel)
install(EXPORT tpmlabTargets NAMESPACE tpmlab:: DESTINATION ${TPMLAB_INSTALL_CMAKEDIR} COMPONENT devel)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/tpmlabConfig.cmake.in
  ${PROJECT_BINARY_DIR}/generated/tpmlabConfig.cmake INSTALL_DESTINATION ${TPMLAB_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/generated/tpmlabConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)  # 0.x: a new minor version may break users
install(FILES ${PROJECT_BINARY_DIR}/generated/tpmlabConfig.cmake
              ${PROJECT_BINARY_DIR}/generated/tpmlabConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/FindSOCI.cmake
        DESTINATION ${TPMLAB_INSTALL_CMAKEDIR} COMPONENT devel)

# tpmlab.pc: every static library, each before the ones it uses (a static
# link reads them in order), then what they link from the system.
set(TPMLAB_PC_ORDER)
function(tpmlab_pc_visit target)
  get_property(seen GLOBAL PROPERTY TPMLAB_PC_SEEN)
  if(target IN_LIST seen)
    return()
  endif()
  set_property(GLOBAL APPEND PROPERTY TPMLAB_PC_SEEN ${target})
  get_target_property(type ${target} TYPE)
  set(deps)
  if(NOT type STREQUAL "INTERFACE_LIBRARY")
    get_target_property(deps ${target} LINK_LIBRARIES)
  endif()
  get_target_property(interface_deps ${target} INTERFACE_LINK_LIBRARIES)
  foreach(dep ${deps} ${interface_deps})
    if(TARGET ${dep})
      get_target_property(aliased ${dep} ALIASED_TARGET)
      if(aliased)
        set(dep ${aliased})
      endif()
      if(dep IN_LIST TPMLAB_EXPORTED)
        tpmlab_pc_visit(${dep})
      endif()
    endif()
  endforeach()
  set_property(GLOBAL APPEND PROPERTY TPMLAB_PC_POSTORDER ${target})
endfunction()
foreach(target ${TPMLAB_EXPORTED})
  tpmlab_pc_visit(${target})
endforeach()
get_property(postorder GLOBAL PROPERTY TPMLAB_PC_POSTORDER)
list(REVERSE postorder)  # users before what they use
set(TPMLAB_PC_LIBS)
foreach(target ${postorder})
  get_target_property(type ${target} TYPE)
  if(NOT type STREQUAL "INTERFACE_LIBRARY")
    string(APPEND TPMLAB_PC_LIBS " -l${target}")
  endif()
endforeach()
# Relocatable: the prefix is found from where the .pc file is.
file(RELATIVE_PATH TPMLAB_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
configure_file(${CMAKE_CURRENT_LIST_DIR}/tpmlab.pc.in ${PROJECT_BINARY_DIR}/generated/tpmlab.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/generated/tpmlab.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT devel)
