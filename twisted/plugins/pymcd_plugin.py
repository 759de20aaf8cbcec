"""Makes ``twistd pymcd`` available, and pymcd's lean epoll reactor as
``twistd --reactor pymcd-epoll``."""

from twisted.application.reactors import Reactor
from twisted.application.service import ServiceMaker

pymcd = ServiceMaker(
    "pymcd", "pymcd.tap", "A memcached-compatible cache server on Twisted", "pymcd"
)

pymcd_epoll = Reactor(
    "pymcd-epoll", "pymcd.lean_reactor", "epoll without per-event log contexts (pymcd's default)"
)
