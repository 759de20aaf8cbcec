"""Who may use the web site: the server's own credentials, as HTTP basic authentication.

With ``-Y`` the users of the auth file, with ``-S`` those of the SASL password file; without
either the site is open (and listens on 127.0.0.1 unless told otherwise). When the server has
TLS the site is served over TLS too (see :mod:`pymcd.web.site`), so passwords never cross the
network in clear.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Callable, Optional

from twisted.web.resource import Resource

if TYPE_CHECKING:  # pragma: no cover
    from pymcd.context import ServerContext

Checker = Callable[[bytes, bytes], bool]


def credential_checker(server: "ServerContext") -> Optional[Checker]:
    """The check the memcached side applies, or None when it asks for no credentials."""
    if server.auth_table is not None:
        return server.auth_table.check
    if server.settings.sasl:
        from pymcd.auth.sasl import PasswordFile, password_file_path

        passwords = PasswordFile(password_file_path(server.settings.sasl_password_file))
        return passwords.check
    return None


def basic_credentials(header: Optional[bytes]):
    """(user, password) from an ``Authorization: Basic ...`` header, or None."""
    if not header or not header.lower().startswith(b"basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    return (user, password) if colon else None


class Unauthorized(Resource):
    isLeaf = True

    def render(self, request) -> bytes:
        request.setResponseCode(401)
        request.setHeader(b"www-authenticate", b'Basic realm="pymcd", charset="UTF-8"')
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"authentication required\n"


class Guarded(Resource):
    """Every path below ``wrapped`` answers 401 until the request carries valid credentials."""

    def __init__(self, wrapped: Resource, check: Checker) -> None:
        super().__init__()
        self.wrapped = wrapped
        self.check = check

    def _allowed(self, request) -> bool:
        credentials = basic_credentials(request.getHeader(b"authorization"))
        return credentials is not None and self.check(*credentials)

    def getChildWithDefault(self, name: bytes, request):
        if not self._allowed(request):
            return Unauthorized()
        return self.wrapped.getChildWithDefault(name, request)

    def render(self, request) -> bytes:
        if not self._allowed(request):
            return Unauthorized().render(request)
        return self.wrapped.render(request)
