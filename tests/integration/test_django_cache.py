"""Django's cache framework with the PyLibMCCache backend (libmemcached under pylibmc) against a
real pymcd: ``cache.set(key, value, 0)`` is what issue 11 found broken.

libmemcached sends the timeout as an unsigned number and Django turns a timeout of 0 into an
exptime of -1 ("expire at once"), so pymcd sees ``set <key> <flags> 4294967295 <n>``; memcached
reads that exptime as the int32 -1, stores the item already expired and answers STORED.
"""

import pytest

django = pytest.importorskip("django")
from django.conf import settings  # noqa: E402


@pytest.fixture(scope="module")
def cache(pymcd_server):
    if not settings.configured:
        settings.configure(CACHES={"default": {
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
            "LOCATION": "%s:%d" % pymcd_server.address,
        }})
        django.setup()
    from django.core.cache import caches
    cache = caches["default"]
    yield cache
    cache.close()


def test_timeout_zero_sets_without_error_and_the_connection_stays_usable(cache):
    cache.set("django-kept", "value", 300)
    cache.set("django-zero", "value", 0)  # raised pylibmc.ClientError before the fix
    assert cache.get("django-zero") is None  # timeout 0 means "expire at once"
    assert cache.get("django-kept") == "value"
    cache.clear()  # flush_all on the same connection
    assert cache.get("django-kept") is None


def test_timeout_none_and_negative(cache):
    cache.set("django-forever", "value", None)
    cache.set("django-negative", "value", -5)
    assert cache.get("django-forever") == "value"
    assert cache.get("django-negative") is None
