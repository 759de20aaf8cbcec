"""Authentication: SASL for the binary protocol (``-S``), see :mod:`pymcd.auth.sasl`."""
