"""The HTTP side of the real qcal-server (/healthz, /metrics): methods, and idle connections."""

import http.client
import socket

import pytest

# Seconds a request may take: far above what a request takes (milliseconds), so a slow machine
# does not fail the tests, and far below the server's idle timeout (120 s), so an answer while
# idle connections are open cannot be explained by the server closing them first.
TIMEOUT = 10


@pytest.fixture(scope="module")
def http_address(server):
    host, port = server.http_address.rsplit(":", 1)
    return host, int(port)


def request(address, method, path):
    connection = http.client.HTTPConnection(*address, timeout=TIMEOUT)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_get_answers_health_and_metrics(http_address):
    status, headers, body = request(http_address, "GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["Content-Length"] == "3"
    status, headers, body = request(http_address, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# TYPE " in body
    assert request(http_address, "GET", "/nothing-here")[0] == 404


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_head_gives_the_headers_of_get_without_a_body(http_address, path):
    status, headers, body = request(http_address, "HEAD", path)
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) > 0
    if path == "/healthz":
        assert headers["Content-Length"] == "3"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_not_allowed(http_address, method):
    status, headers, body = request(http_address, method, "/healthz")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert body == f"method {method} is not allowed; use GET, HEAD\n".encode()
    assert request(http_address, method, "/metrics")[0] == 405


def test_a_connection_serves_several_requests(http_address):
    # Scrapers keep their connection alive between scrapes.
    connection = http.client.HTTPConnection(*http_address, timeout=TIMEOUT)
    try:
        for path in ("/healthz", "/metrics", "/healthz"):
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 200 and response.read()
            assert response.getheader("Connection") != "close"
    finally:
        connection.close()


def still_open(sock):
    """True when the server has neither closed `sock` nor sent anything on it."""
    sock.setblocking(False)
    try:
        sock.recv(1)  # b"" is a close, a byte an answer to half a request
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def test_idle_connections_do_not_starve_the_server(http_address):
    # 100 connections that send nothing or half a request line, as a port scanner, a stuck
    # client or a slow-loris would. Each held a civetweb worker (16) until its 5 s request
    # timeout, so a probe queued behind them waited about half a minute; with an event loop
    # they cost a file descriptor each and the probe is answered at once.
    idle = [socket.create_connection(http_address, timeout=TIMEOUT) for _ in range(100)]
    try:
        for number, sock in enumerate(idle):
            if number % 2:
                sock.sendall(b"GET /heal" if number % 4 == 1 else b"GET /healthz HTTP/1.1\r\n")
        for _ in range(3):
            status, _, body = request(http_address, "GET", "/healthz")
            assert (status, body) == (200, b"ok\n")
            assert request(http_address, "GET", "/metrics")[0] == 200
        # The server answered without dropping them: they are connected still.
        assert all(still_open(sock) for sock in idle)
    finally:
        for sock in idle:
            sock.close()
    assert request(http_address, "GET", "/healthz")[0] == 200
