#pragma once
// RedisClusterOptions, RedisSentinelOptions: the header moved to <corocache/redis/topology_options.hpp>
// (memory and Redis each have their folder beside the facade headers); this name stays for existing code.
#include <corocache/redis/topology_options.hpp>
