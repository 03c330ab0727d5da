-- luacheck configuration for mq (`make lint`).
std = "lua54"
max_line_length = 120
codes = true

-- The busted specs and their helpers.
files["spec"] = { std = "+busted" }

-- Command-line tools and examples are scripts: they may read `arg`.
files["bin"] = { read_globals = { "arg" } }
files["bench"] = { read_globals = { "arg" } }
files["examples"] = { read_globals = { "arg" } }
