"""pymcd-slap: a load generator for memcached-compatible servers, in the spirit of memaslap.

memaslap's engine (many non-blocking connections, each a state machine keeping a window of task
items and one request in flight) rebuilt on Twisted, with memaslap's options, config files and
report layout, so existing scripts and configs keep working against pymcd or any memcached.

Modules: ``settings`` (the run's knobs), ``config`` (memaslap's ``-F`` file), ``options`` (the
command line), ``workload`` (pre-generated keys and values, the task window), ``codec`` (ASCII
and binary requests and reply parsing), ``connection`` (the concurrency state machine and its
TCP/UDP transports), ``stats`` (counters and latencies), ``report`` (memaslap's text layout and
JSON), ``worker`` (one reactor per process), ``cli`` (the ``pymcd-slap`` entry point).
"""
