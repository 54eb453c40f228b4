#pragma once
// corocache: one include for everything. Each part also has a header of its own.

#include <corocache/backend.hpp>
#include <corocache/batch.hpp>
#include <corocache/cache.hpp>
#include <corocache/errors.hpp>
#include <corocache/func_cache.hpp>
#include <corocache/lock.hpp>
#include <corocache/memory/backend.hpp>
#include <corocache/null_backend.hpp>
#include <corocache/options.hpp>
#include <corocache/redis/backend.hpp>
#include <corocache/redis/options.hpp>
#include <corocache/scope.hpp>
