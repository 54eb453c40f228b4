#pragma once
// RedisBackend: the header moved to <corocache/redis/backend.hpp> (memory and Redis
// each have their folder beside the facade headers); this name stays for existing code.
#include <corocache/redis/backend.hpp>
