# corocache_check_compiler(): warns once per configure when the C++ compiler is GCC < 13,
# whose coroutine bugs turn some natural co_await forms into crashes. Used by corocache's
# own CMakeLists.txt and by the installed package config (this file is installed next to it).
# Set COROCACHE_SILENCE_GCC_WARNING=ON once you follow the README section it points to.
function(corocache_check_compiler)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR NOT CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13
     OR COROCACHE_SILENCE_GCC_WARNING)
    return()
  endif()
  # Once per configure, however many times find_package(corocache) runs.
  get_property(warned GLOBAL PROPERTY COROCACHE_GCC_WARNED)
  if(warned)
    return()
  endif()
  set_property(GLOBAL PROPERTY COROCACHE_GCC_WARNED TRUE)
  message(WARNING
    "corocache: g++ ${CMAKE_CXX_COMPILER_VERSION} miscompiles some coroutine code (GCC PRs 106188, "
    "101976/100611, 103871/109227): a co_await in an if condition, aggregate temporaries or braced "
    "lists inside a co_await expression, a co_await inside a test macro. See corocache's README, "
    "section \"Compilers: g++ 12 and coroutines\" (README.md#compilers-g-12-and-coroutines), for the "
    "safe forms; for new projects prefer clang++-19 (Debian 12: apt install clang-19). "
    "Silence with -DCOROCACHE_SILENCE_GCC_WARNING=ON.")
endfunction()
