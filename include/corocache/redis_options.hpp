#pragma once
// RedisOptions, RedisTlsOptions: the header moved to <corocache/redis/options.hpp> (memory and Redis
// each have their folder beside the facade headers); this name stays for existing code.
#include <corocache/redis/options.hpp>
