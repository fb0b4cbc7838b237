"""Redis: connections, key names, Lua scripts, publishing and consuming."""
