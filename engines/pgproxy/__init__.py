"""A PostgreSQL wire-protocol proxy's parts, shared by the SQL firewall (``engines.firewall``)
and the sharding router (``engines.router``): client login (SCRAM-SHA-256), pools of warm
server connections, the compiled transport and relay, prepared statements under transaction
pooling, metrics and the admin console. ``proxy.BaseProxy`` puts them together; a proxy
subclasses it and brings the statement policy its sessions enforce (``_policy.Policy``).
engines/pgproxy/README.md has the contracts."""
