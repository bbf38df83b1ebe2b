"""Test certificates, made with Debian's openssl for each test run (nothing is checked in):

    certs = make_certs(tmp_path)
    certs.ca, certs.server_cert, certs.server_key   # server: CN localhost, SAN localhost, 127.0.0.1
    certs.client_cert, certs.client_key             # signed by certs.ca (clientAuth)
    certs.other_ca                                  # a CA that signed nothing of the server's
    certs.other_client_cert, certs.other_client_key # signed by other_ca

EC P-256 keys: quick to make, and both OpenSSL (gRPC) and GnuTLS (libmicrohttpd) take them.
"""

import pathlib
import subprocess
from types import SimpleNamespace


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(directory, name):
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
             "-subj", f"/CN=qcal test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)


def _leaf(directory, name, ca, subject, extensions):
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
             cwd=directory)


def make_certs(directory):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _ca(directory, "ca")
    _ca(directory, "other_ca")
    _leaf(directory, "server", "ca", "/CN=localhost",
          "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    client_ext = "extendedKeyUsage=clientAuth\n"
    _leaf(directory, "client", "ca", "/CN=qcal test client", client_ext)
    _leaf(directory, "other_client", "other_ca", "/CN=qcal test other client", client_ext)
    d = directory
    return SimpleNamespace(
        ca=d / "ca.pem", other_ca=d / "other_ca.pem",
        server_cert=d / "server.pem", server_key=d / "server.key",
        client_cert=d / "client.pem", client_key=d / "client.key",
        other_client_cert=d / "other_client.pem", other_client_key=d / "other_client.key",
    )
