"""Store modes and results as plain ints: the hot path compares them on every request."""

# How a store request treats an existing item.
SET, ADD, REPLACE, APPEND, PREPEND, CAS = range(6)

# What happened.
STORED = 10
NOT_STORED = 11
EXISTS = 12
NOT_FOUND = 13
TOO_LARGE = 14
NO_MEMORY = 15
DELETED = 16
TOUCHED = 17
DELTA_OK = 18
DELTA_NON_NUMERIC = 19
