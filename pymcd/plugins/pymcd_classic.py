"""pymcd's classic text commands, exposed to twisted.plugin discovery like any third party's."""

from pymcd.commands.arithmetic import DECR, INCR
from pymcd.commands.maintenance import (
    FLUSH_ALL,
    QUIT,
    REFRESH_CERTS,
    SHUTDOWN,
    VERBOSITY,
    VERSION,
)
from pymcd.commands.removal import DELETE, TOUCH
from pymcd.commands.retrieval import GAT, GATS, GET, GETS
from pymcd.commands.statistics import STATS
from pymcd.commands.store_admin import CACHE_MEMLIMIT, LRU, LRU_CRAWLER, SLABS
from pymcd.commands.storage import ADD, APPEND, CAS, PREPEND, REPLACE, SET
from pymcd.commands.watch import WATCH

__all__ = [
    "GET", "GETS", "GAT", "GATS",
    "SET", "ADD", "REPLACE", "APPEND", "PREPEND", "CAS",
    "INCR", "DECR", "DELETE", "TOUCH",
    "FLUSH_ALL", "REFRESH_CERTS", "VERSION", "VERBOSITY", "QUIT", "SHUTDOWN", "STATS",
    "SLABS", "LRU", "LRU_CRAWLER", "CACHE_MEMLIMIT", "WATCH",
]
