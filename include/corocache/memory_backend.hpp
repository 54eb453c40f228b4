#pragma once
// MemoryBackend, MemoryOptions: the header moved to <corocache/memory/backend.hpp> (memory and Redis
// each have their folder beside the facade headers); this name stays for existing code.
#include <corocache/memory/backend.hpp>
