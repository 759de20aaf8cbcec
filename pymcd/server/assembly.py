"""Putting a server together: store service, shared context, listeners."""

from __future__ import annotations

from twisted.application import service, strports
from twisted.logger import Logger

from pymcd.context import ServerContext
from pymcd.options import endpoint_strings
from pymcd.server.stream import MemcacheStreamFactory
from pymcd.service import StoreService
from pymcd.settings import Settings
from pymcd.store import Store

log = Logger()


class PymcdService(service.MultiService):
    """The whole server: ``self.context`` is what every connection shares."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        store = Store(settings.store)
        self.context = ServerContext(settings, store)
        self.context.request_shutdown = self.shutdown
        StoreService(store).setServiceParent(self)
        factory = MemcacheStreamFactory(self.context)
        self.factory = factory
        for endpoint in endpoint_strings(settings):
            listener = strports.service(endpoint, factory)
            listener.setName(endpoint)
            listener.setServiceParent(self)

    def startService(self) -> None:
        if self.settings.verbose > 1:
            for line in self.context.store.slab_class_lines():
                self.context.trace(line)
        super().startService()

    def shutdown(self, graceful: bool) -> None:
        """``shutdown`` / ``shutdown graceful``: stop the reactor once replies are out."""
        from twisted.internet import reactor

        reactor.callLater(0, reactor.stop)


def build_server(settings: Settings) -> PymcdService:
    return PymcdService(settings)
