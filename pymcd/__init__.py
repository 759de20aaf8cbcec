"""pymcd: a memcached-compatible cache server built on Twisted."""

__version__ = "0.1.0"
