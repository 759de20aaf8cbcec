"""TLS for stream listeners, from memcached's -Z and ``-o ssl_*`` settings, on pyOpenSSL.

The context is rebuilt by ``refresh_certs`` and handed to each new connection, so a renewed
certificate takes effect without a restart while open connections keep theirs (memcached's
behaviour). Client certificates are checked by memcached's four verify modes.
"""

from __future__ import annotations

import time
from typing import Optional

from OpenSSL import SSL
from twisted.protocols.tls import TLSMemoryBIOFactory

from pymcd.settings import Settings
from pymcd.stats import ServerStats

VERIFY_MODES = {
    0: SSL.VERIFY_NONE,
    1: SSL.VERIFY_PEER,
    2: SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT,
    3: SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE,
}
MIN_VERSIONS = {
    "tlsv1.0": SSL.TLS1_VERSION,
    "tlsv1.1": SSL.TLS1_1_VERSION,
    "tlsv1.2": SSL.TLS1_2_VERSION,
    "tlsv1.3": SSL.TLS1_3_VERSION,
}


class TLSError(Exception):
    """The certificate or key could not be loaded; ``str()`` is the reason."""


class ServerTLSContext:
    """An old-style Twisted context factory (``getContext()``) whose context can be reloaded."""

    def __init__(self, settings: Settings, stats: ServerStats) -> None:
        self.settings = settings
        self.stats = stats
        self.loaded_at = time.time()
        self._context = self._build()

    def _verify(self, connection, certificate, errno, depth, ok) -> bool:
        return bool(ok)

    def _count_new_sessions(self, connection, where, ret) -> None:
        if where & SSL.SSL_CB_HANDSHAKE_DONE:
            self.stats.ssl_new_sessions += 1

    def _build(self) -> SSL.Context:
        settings = self.settings
        if not settings.ssl_chain_cert:
            raise TLSError("ssl_chain_cert is required with -Z")
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(MIN_VERSIONS[settings.ssl_min_version])
        try:
            context.use_certificate_chain_file(settings.ssl_chain_cert)
            context.use_privatekey_file(settings.ssl_key or settings.ssl_chain_cert)
            context.check_privatekey()
            if settings.ssl_ca_cert:
                context.load_verify_locations(settings.ssl_ca_cert)
            if settings.ssl_ciphers:
                context.set_cipher_list(settings.ssl_ciphers.encode())
        except SSL.Error as error:
            raise TLSError("Error loading the certificate or key: %s" % (error,))
        context.set_verify(VERIFY_MODES[settings.ssl_verify_mode], self._verify)
        context.set_session_cache_mode(
            SSL.SESS_CACHE_SERVER if settings.ssl_session_cache else SSL.SESS_CACHE_OFF
        )
        context.set_session_id(b"pymcd")
        context.set_info_callback(self._count_new_sessions)
        return context

    def getContext(self) -> SSL.Context:
        return self._context

    def refresh(self) -> Optional[str]:
        """Reload certificate and key; returns memcached's error text, or None on success."""
        try:
            self._context = self._build()
        except TLSError as error:
            return str(error)
        self.loaded_at = time.time()
        return None


def tls_factory(context: ServerTLSContext, factory) -> TLSMemoryBIOFactory:
    """Wrap a plain stream factory so its connections speak TLS first."""
    return TLSMemoryBIOFactory(context, False, factory)
