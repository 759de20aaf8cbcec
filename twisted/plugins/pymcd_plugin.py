"""Makes ``twistd pymcd`` available: the whole plugin is this ServiceMaker line."""

from twisted.application.service import ServiceMaker

pymcd = ServiceMaker(
    "pymcd", "pymcd.tap", "A memcached-compatible cache server on Twisted", "pymcd"
)
