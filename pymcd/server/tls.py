"""TLS for stream listeners, from memcached's -Z and ``-o ssl_*`` settings, on pyOpenSSL.

The context is rebuilt by ``refresh_certs`` and handed to each new connection, so a renewed
certificate takes effect without a restart while open connections keep theirs (memcached's
behaviour). Client certificates are checked by memcached's four verify modes.
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from OpenSSL import SSL
from OpenSSL._util import lib as openssl
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer

from pymcd.settings import Settings
from pymcd.startup import StartupError
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


MISSING_CERTIFICATE = (
    "TLS (-Z, --tls) needs a certificate and its key: add -o ssl_chain_cert=cert.pem,"
    "ssl_key=key.pem (to try it out, make a self-signed pair with: openssl req -x509 "
    "-newkey rsa:2048 -nodes -days 365 -subj /CN=localhost -keyout key.pem -out cert.pem)")


class TLSError(StartupError):
    """The certificate or key could not be loaded; ``str()`` is memcached's message."""


def _load(what: str, path: str, load: Callable[[], None]) -> None:
    """Run one of OpenSSL's loads, failing as memcached does: ``Error loading the <what>:
    <path> : <reason>``. A file that cannot be opened is said with the system's reason
    (pyOpenSSL reports it with an empty error list)."""
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise TLSError("Error loading the %s: %s : %s" % (what, path, error.strerror)) from None
    try:
        load()
    except SSL.Error as error:
        reasons = [reason for _, _, reason in (error.args[0] if error.args else [])]
        raise TLSError("Error loading the %s: %s : %s"
                       % (what, path, reasons[-1] if reasons else "not a PEM file")) from None


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLSContext:
    """Makes each new connection's OpenSSL connection from a context that can be reloaded."""

    def __init__(self, settings: Settings, stats: ServerStats) -> None:
        self.settings = settings
        self.stats = stats
        self.loaded_at = time.time()
        self._context = self._build()

    def _verify(self, connection, certificate, errno, depth, ok) -> bool:
        return bool(ok)

    def _count_new_sessions(self, connection, where, ret) -> None:
        """memcached counts sessions its cache creates; a resumed one is not new."""
        if where & SSL.SSL_CB_HANDSHAKE_DONE and not _session_reused(connection):
            self.stats.ssl_new_sessions += 1

    def _build(self) -> SSL.Context:
        settings = self.settings
        if not settings.ssl_chain_cert:
            raise TLSError(MISSING_CERTIFICATE)
        context = SSL.Context(SSL.TLS_SERVER_METHOD)
        context.set_min_proto_version(MIN_VERSIONS[settings.ssl_min_version])
        chain, key = settings.ssl_chain_cert, settings.ssl_key or settings.ssl_chain_cert
        _load("certificate chain", chain, lambda: context.use_certificate_chain_file(chain))
        _load("key", key, lambda: (context.use_privatekey_file(key), context.check_privatekey()))
        if settings.ssl_ca_cert:
            ca = settings.ssl_ca_cert
            _load("CA certificate", ca, lambda: context.load_verify_locations(ca))
        if settings.ssl_ciphers:
            try:
                context.set_cipher_list(settings.ssl_ciphers.encode())
            except SSL.Error:
                raise TLSError("Error setting the provided cipher(s): %s"
                               % settings.ssl_ciphers) from None
        context.set_verify(VERIFY_MODES[settings.ssl_verify_mode], self._verify)
        context.set_session_cache_mode(
            SSL.SESS_CACHE_SERVER if settings.ssl_session_cache else SSL.SESS_CACHE_OFF
        )
        context.set_session_id(b"pymcd")
        if settings.ssl_session_cache:
            context.set_info_callback(self._count_new_sessions)
        return context

    def serverConnectionForTLS(self, protocol) -> SSL.Connection:
        return SSL.Connection(self._context, None)

    def refresh(self) -> Optional[str]:
        """Reload certificate and key; returns memcached's error text, or None on success."""
        try:
            self._context = self._build()
        except TLSError as error:
            return str(error)
        self.loaded_at = time.time()
        return None


def _session_reused(connection: SSL.Connection) -> bool:
    """OpenSSL's SSL_session_reused, which pyOpenSSL binds but does not wrap."""
    return bool(openssl.SSL_session_reused(connection._ssl))


def tls_factory(context: ServerTLSContext, factory) -> TLSMemoryBIOFactory:
    """Wrap a plain stream factory so its connections speak TLS first."""
    return TLSMemoryBIOFactory(context, False, factory)
