# Builds and runs tests/consumer against corocache, as a user would:
#   cmake -DMODE=package|subdirectory -DSOURCE_DIR=<corocache source> -DBUILD_DIR=<its build>
#         -DWORK_DIR=<scratch> -DGENERATOR=<gen> -DCXX_COMPILER=<c++> -P run_consumer.cmake
# package: installs BUILD_DIR into WORK_DIR/prefix, then find_package()s it from there.
# subdirectory: add_subdirectory()s SOURCE_DIR.
# Optional: -DCORE_ONLY=ON builds the memory-only consumer of corocache::core without hiredis;
# -DEXPECT_GCC_WARNING=ON|OFF checks that configuring prints corocache's g++ < 13 warning
# exactly once (ON) or not at all (OFF).
foreach(var IN ITEMS MODE SOURCE_DIR BUILD_DIR WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
set(configure_args -G "${GENERATOR}" -S "${SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCOROCACHE_CONSUMER_MODE=${MODE}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
if(CORE_ONLY)
  list(APPEND configure_args -DCOROCACHE_CONSUMER_CORE_ONLY=ON)
endif()

if(MODE STREQUAL "package")
  message(STATUS "installing ${BUILD_DIR} into ${WORK_DIR}/prefix")
  execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                  COMMAND_ERROR_IS_FATAL ANY)
  list(APPEND configure_args "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
       "-DCOROCACHE_EXPECTED_PREFIX=${WORK_DIR}/prefix")
else()
  list(APPEND configure_args "-DCOROCACHE_SOURCE_DIR=${SOURCE_DIR}")
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" ${configure_args}
                OUTPUT_VARIABLE configure_out ERROR_VARIABLE configure_err RESULT_VARIABLE configure_rc)
message("${configure_out}")
message("${configure_err}")
if(NOT configure_rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed (${configure_rc})")
endif()
if(DEFINED EXPECT_GCC_WARNING)
  string(REGEX MATCHALL "corocache: g\\+\\+ [0-9.]+ miscompiles" warnings "${configure_err}")
  list(LENGTH warnings warning_count)
  if(EXPECT_GCC_WARNING AND NOT warning_count EQUAL 1)
    message(FATAL_ERROR "expected corocache's g++ warning once, saw it ${warning_count} times")
  elseif(NOT EXPECT_GCC_WARNING AND NOT warning_count EQUAL 0)
    message(FATAL_ERROR "corocache warned about g++ with another compiler")
  endif()
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${WORK_DIR}/build/corocache_consumer" COMMAND_ERROR_IS_FATAL ANY)
