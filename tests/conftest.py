import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import have_memcached, start_memcached, start_pymcd  # noqa: E402


@pytest.fixture(scope="module")
def pymcd_server():
    """One pymcd per test module, on its defaults."""
    with start_pymcd() as server:
        yield server


@pytest.fixture
def conn(pymcd_server):
    sock = pymcd_server.connect()
    yield sock
    sock.close()


@pytest.fixture(scope="module")
def memcached_server():
    if not have_memcached():
        pytest.skip("Debian's memcached is not installed")
    with start_memcached() as server:
        yield server
