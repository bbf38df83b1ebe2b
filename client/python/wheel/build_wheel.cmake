# Builds the qcal wheel from a build folder's Python package; run by the target qcal_wheel
# (client/python/CMakeLists.txt) and by tests/python/test_wheel.py:
#   cmake -DQCAL_BUILD_DIR=build -DQCAL_VERSION=0.1.0 -DQCAL_WHEEL_DIR=build/dist \
#         -DQCAL_STAGE_DIR=build/wheel -DPYTHON=/usr/bin/python3 [-DSTRIP=strip] -P build_wheel.cmake
# It stages QCAL_BUILD_DIR/python/qcal (the pure-Python files and the extension), bundles the
# project's own shared libraries the extension needs (those resolved inside QCAL_BUILD_DIR, e.g.
# libqcal_proto.so) and points the extension's RUNPATH at $ORIGIN, so nothing refers to the build
# folder. gRPC, protobuf, abseil and the C++ runtime stay system libraries. Then
# `pip wheel --no-deps --no-build-isolation --no-index` packs it offline with the system setuptools.
cmake_minimum_required(VERSION 3.25)

foreach(var QCAL_BUILD_DIR QCAL_VERSION QCAL_WHEEL_DIR QCAL_STAGE_DIR PYTHON)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "build_wheel.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED STRIP)
  find_program(STRIP strip)  # debug info would make the wheel ~25 MB instead of a few
endif()

file(REAL_PATH "${QCAL_BUILD_DIR}" build_dir)
set(package_dir "${build_dir}/python/qcal")
file(GLOB extension "${package_dir}/_qcal*.so")
list(LENGTH extension count)
if(NOT count EQUAL 1)
  message(FATAL_ERROR "build_wheel.cmake: expected one ${package_dir}/_qcal*.so, found "
                      "${count}: build the target qcal_python first")
endif()

# Libraries the extension resolves inside the build folder (through its build RUNPATH).
function(runtime_dependencies module out_resolved out_unresolved)
  file(GET_RUNTIME_DEPENDENCIES MODULES "${module}"
    RESOLVED_DEPENDENCIES_VAR resolved UNRESOLVED_DEPENDENCIES_VAR unresolved)
  set(${out_resolved} "${resolved}" PARENT_SCOPE)
  set(${out_unresolved} "${unresolved}" PARENT_SCOPE)
endfunction()
runtime_dependencies("${extension}" resolved unresolved)
if(unresolved)
  message(FATAL_ERROR "build_wheel.cmake: ${extension} needs missing libraries: ${unresolved}")
endif()
set(bundled)
foreach(library ${resolved})
  file(REAL_PATH "${library}" real)
  cmake_path(IS_PREFIX build_dir "${real}" NORMALIZE inside)
  if(inside)
    list(APPEND bundled "${real}")
  endif()
endforeach()

# Stage: a fresh copy, so files removed from the package do not linger in the wheel.
file(REMOVE_RECURSE "${QCAL_STAGE_DIR}")
set(stage_package "${QCAL_STAGE_DIR}/qcal")
file(MAKE_DIRECTORY "${stage_package}")
file(GLOB sources "${package_dir}/*.py")
file(COPY ${sources} ${extension} ${bundled} DESTINATION "${stage_package}")
get_filename_component(extension_name "${extension}" NAME)
set(binaries "${stage_package}/${extension_name}")
foreach(library ${bundled})
  get_filename_component(name "${library}" NAME)
  list(APPEND binaries "${stage_package}/${name}")
endforeach()
foreach(binary ${binaries})
  # A bundled library without a RUNPATH needs only system libraries: it keeps none.
  unset(rpath)  # READ_ELF leaves a variable untouched when the entry is missing
  unset(runpath)
  file(READ_ELF "${binary}" RPATH rpath RUNPATH runpath)
  if(rpath OR runpath)
    file(RPATH_SET FILE "${binary}" NEW_RPATH "$ORIGIN")
  endif()
  if(STRIP)
    execute_process(COMMAND "${STRIP}" --strip-debug "${binary}" COMMAND_ERROR_IS_FATAL ANY)
  endif()
endforeach()

# Check: the staged extension loads nothing from the build folder and misses nothing.
runtime_dependencies("${stage_package}/${extension_name}" resolved unresolved)
if(unresolved)
  message(FATAL_ERROR "build_wheel.cmake: staged extension misses libraries: ${unresolved}")
endif()
file(REAL_PATH "${stage_package}" stage_real)
foreach(library ${resolved})
  file(REAL_PATH "${library}" real)
  cmake_path(IS_PREFIX build_dir "${real}" NORMALIZE in_build)
  cmake_path(IS_PREFIX stage_real "${real}" NORMALIZE in_stage)  # the stage may be in the build
  if(in_build AND NOT in_stage)
    message(FATAL_ERROR "build_wheel.cmake: staged extension still loads ${real}")
  endif()
endforeach()

configure_file("${CMAKE_CURRENT_LIST_DIR}/pyproject.toml.in" "${QCAL_STAGE_DIR}/pyproject.toml"
  @ONLY)
file(COPY "${CMAKE_CURRENT_LIST_DIR}/setup.py" DESTINATION "${QCAL_STAGE_DIR}")

file(MAKE_DIRECTORY "${QCAL_WHEEL_DIR}")
file(GLOB old_wheels "${QCAL_WHEEL_DIR}/qcal-*.whl")
if(old_wheels)
  file(REMOVE ${old_wheels})
endif()
execute_process(
  COMMAND "${PYTHON}" -m pip wheel --no-deps --no-build-isolation --no-index
    --disable-pip-version-check --no-cache-dir -q -w "${QCAL_WHEEL_DIR}" "${QCAL_STAGE_DIR}"
  WORKING_DIRECTORY "${QCAL_STAGE_DIR}"
  COMMAND_ERROR_IS_FATAL ANY)
file(GLOB wheel "${QCAL_WHEEL_DIR}/qcal-*.whl")
message(STATUS "qcal wheel: ${wheel} (bundles ${bundled})")
