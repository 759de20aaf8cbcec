"""pymcd's web side: one ``twisted.web`` site (``--http ENDPOINT``) serving Prometheus metrics,
a live dashboard, its JSON API and a server-sent event stream.

It reads the server's counters at request time and never adds work to the memcached request path
(the latency sampler swaps a few command-table entries now and then instead of timing every
request). It imports the server's modules; nothing below it imports it.
"""
