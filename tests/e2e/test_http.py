"""The HTTP side of the real qcal-server (/healthz, /metrics): methods, and idle connections."""

import http.client
import socket

import pytest

# Seconds a request may take. Below the server's request timeout (5 s), so only enough worker
# threads can explain an answer while idle connections are open, and far above what a request
# of a free worker takes.
TIMEOUT = 4


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


def test_idle_connections_do_not_starve_the_server(http_address):
    # Connections that never send a request each hold a civetweb worker until the request
    # timeout; with civetweb's defaults as configured before (4 workers, 30 s) these 8 made
    # /healthz wait half a minute.
    idle = [socket.create_connection(http_address, timeout=TIMEOUT) for _ in range(8)]
    try:
        assert request(http_address, "GET", "/healthz")[:2][0] == 200
        assert request(http_address, "GET", "/metrics")[0] == 200
    finally:
        for sock in idle:
            sock.close()
