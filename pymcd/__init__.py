"""pymcd: a memcached-compatible cache server built on Twisted."""

__version__ = "0.1.0"

# What `version` and `stats` report: clients gate features (meta commands, binary opcodes) on the
# memcached version they see, so pymcd answers as the memcached release it matches.
MEMCACHED_VERSION = "1.6.18"
