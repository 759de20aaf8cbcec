"""The dashboard in a real browser: Debian's headless Chromium, driven through chromedriver by
selenium, against pymcd under pymcd-slap's load; and the site's access rules."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

import pytest

from support import HOST, exchange, stats
from web_support import fetch, slap, start_with_http

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--window-size=1400,1800", "--user-data-dir=%s" % (tmp_path / "profile")):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_dashboard_charts_fill_and_a_set_reaches_the_watch_tail(browser, tmp_path):
    server, http_port = start_with_http()
    load = slap(server.port, seconds=20, concurrency=4)
    try:
        browser.get("http://%s:%d/" % (HOST, http_port))
        points = wait_until(lambda: (lambda p: p if p["requests"] >= 4 else None)(
            browser.execute_script("return pymcdDashboard.points()")), 20, "four snapshots")
        assert points["hits"] >= 4 and points["lru"] >= 4 and points["connections"] >= 4
        # Non-empty data: gets flowing, a hit ratio, connections counted.
        assert browser.execute_script(
            "return pymcdDashboard.charts.requests.data[1].some(v => v > 0)")
        assert browser.execute_script(
            "return pymcdDashboard.charts.hits.data[1].some(v => v !== null && v >= 0)")
        assert browser.execute_script(
            "return pymcdDashboard.charts.connections.data[1].some(v => v >= 4)")
        assert browser.execute_script("return document.querySelectorAll('#chart-requests canvas').length") >= 1
        assert browser.execute_script("return document.querySelectorAll('#slab-bars rect').length") >= 1
        assert browser.execute_script("return document.querySelectorAll('#lru-bars rect').length") >= 1
        assert "of 64.0 MiB (-m)" in browser.find_element("id", "memory-text").text

        key = "dashboard-%s" % uuid.uuid4().hex[:8]
        browser.find_element("name", "key").send_keys("^" + key)
        browser.find_element("id", "watch-toggle").click()
        with socket.create_connection((HOST, server.port)) as client:
            # The watch is live once the server counts the page's watcher.
            wait_until(lambda: stats(client).get("log_watchers") == "1", 10, "the page's watcher")
            assert exchange(client, b"set %s 0 0 2\r\nhi\r\n" % key.encode(), b"\r\n") \
                == b"STORED\r\n"
            set_at = time.time()
        line = wait_until(lambda: browser.execute_script(
            "return [...document.querySelectorAll('#tail li')].map(li => li.textContent)"
            ".find(t => t.includes('key=%s') && t.includes('cmd=set'))" % key), 2.0,
            "the set in the watch tail")
        assert time.time() - set_at <= 2.0
        assert "status=stored" in line
        screenshot = tmp_path / "dashboard.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10000
        if os.environ.get("PYMCD_DASHBOARD_SCREENSHOT"):
            shutil.copy(screenshot, os.environ["PYMCD_DASHBOARD_SCREENSHOT"])
    finally:
        load.kill()
        load.wait()
        server.stop()


PATHS = ("/", "/metrics", "/api/stats", "/api/slabs", "/api/snapshot", "/api/events",
         "/api/watch", "/static/dashboard.js")


def basic(user: str, password: str) -> dict:
    token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    return {"Authorization": "Basic " + token}


def refused(port: int, path: str, headers=None) -> int:
    try:
        fetch(port, path, headers, timeout=5)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


@pytest.mark.parametrize("mode", ["ascii", "sasl"])
def test_with_authentication_on_every_path_needs_the_servers_credentials(mode):
    with tempfile.NamedTemporaryFile("w", suffix=".pw", delete=False) as handle:
        handle.write("ops:s3cret\n")
    args = ["-Y", handle.name] if mode == "ascii" else ["-S", "--sasl-pwdb", handle.name]
    server, http_port = start_with_http(args)
    try:
        for path in PATHS:
            assert refused(http_port, path) == 401, path
            assert refused(http_port, path, basic("ops", "wrong")) == 401, path
            assert refused(http_port, path, basic("nobody", "s3cret")) == 401, path
        for path in ("/", "/metrics", "/api/stats", "/static/dashboard.js"):
            status, headers, body = fetch(http_port, path, basic("ops", "s3cret"))
            assert status == 200 and body, path
    finally:
        server.stop()
        os.unlink(handle.name)


def test_with_tls_the_site_speaks_tls_with_the_servers_certificate(tmp_path):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out",
            "cert.pem", "-days", "2", "-subj", "/CN=127.0.0.1")
    server, http_port = start_with_http(
        ["-Z", "-o", "ssl_chain_cert=%s,ssl_key=%s" % (tmp_path / "cert.pem", tmp_path / "key.pem")])
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
        context.check_hostname = False
        with urllib.request.urlopen("https://%s:%d/api/stats" % (HOST, http_port),
                                    context=context, timeout=10) as response:
            assert json.loads(response.read())["curr_connections"] >= 0
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen("http://%s:%d/api/stats" % (HOST, http_port), timeout=5).read()
    finally:
        server.stop()


def test_watch_stream_filters_by_the_real_key():
    server, http_port = start_with_http()
    try:
        url = "http://%s:%d/api/watch?kinds=mutations&key=%%5Euser:" % (HOST, http_port)
        with urllib.request.urlopen(url, timeout=10) as events, \
                socket.create_connection((HOST, server.port)) as client:
            assert events.readline() == b"retry: 2000\n"
            wait_until(lambda: stats(client).get("log_watchers") == "1", 10, "the watcher")
            exchange(client, b"set other 0 0 1\r\nz\r\nset user:2 0 0 1\r\ny\r\n", b"STORED\r\n"
                     b"STORED\r\n")
            line = events.readline()
            while not line.startswith(b"data:"):
                line = events.readline()
        # The one line that passed the filter; 'other' was stored before it and filtered out.
        assert line.startswith(b"data: ts=") and b" key=user%3A2 " in line
        assert refused(http_port, "/api/watch?kinds=nonsense") == 400
    finally:
        server.stop()
