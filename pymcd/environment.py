"""The environment variables memcached reads at start-up, applied to pymcd's settings.

- ``MEMCACHED_PORT_FILENAME``: once listening, write each inet listener's port to this file
  (``TCP INET: 11211``, one line per socket), as memcached does so that a caller that asked for
  an ephemeral port (``-p -1``) learns which one it got.
- ``T_MEMD_INITIAL_MALLOC``: bytes the slab allocator counts as already allocated, memcached's
  way of trying memory limits beyond the machine's RAM.

(``MEMCACHED_SASL_PWDB`` is read where SASL starts, see :mod:`pymcd.auth.sasl`.)
"""

from __future__ import annotations

from typing import Mapping

from pymcd.settings import Settings

PORT_FILE_VARIABLE = "MEMCACHED_PORT_FILENAME"
INITIAL_MALLOC_VARIABLE = "T_MEMD_INITIAL_MALLOC"


def apply_environment(settings: Settings, environ: Mapping[str, str]) -> None:
    settings.port_file = environ.get(PORT_FILE_VARIABLE) or None
    initial = environ.get(INITIAL_MALLOC_VARIABLE, "").strip()
    # memcached's safe_strtoll: a number or nothing; a negative one is ignored here rather than
    # wrapped into an allocator that is full from the start.
    if initial.isdigit():
        settings.store.initial_malloced = int(initial)
