"""Probe the web server like a client would: which TLS versions it accepts, HSTS, the redirect."""

from __future__ import annotations

import http.client
import socket
import ssl
import warnings

from cryptography import x509  # a dependency: without it the expiry check would vanish

from ..core import clock
from .findings import Finding, all_ok, error, warning

VERSIONS = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}
WANTED = {"TLS 1.2", "TLS 1.3"}


def _context(version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client that offers exactly ``version`` and does not judge the certificate (we test the
    protocol here; the certificate's validity is a separate finding)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if version is not None:
            # Old versions need the lowest security level to be offered at all.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = version
            ctx.maximum_version = version
    return ctx


def accepts(host: str, port: int, server_name: str, version: ssl.TLSVersion) -> bool | None:
    """True if the server completes a handshake at ``version``, False if it refuses it, None if
    this client cannot offer that version (then nothing is known)."""
    try:
        ctx = _context(version)
    except (ValueError, ssl.SSLError):
        return None
    try:
        with (
            socket.create_connection((host, port), timeout=5) as sock,
            ctx.wrap_socket(sock, server_hostname=server_name) as tls_sock,
        ):
            return tls_sock.version() is not None
    except ssl.SSLError as err:
        if err.reason in ("NO_PROTOCOLS_AVAILABLE", "UNSUPPORTED_PROTOCOL") and "alert" not in str(
            err
        ):
            return None
        return False
    except (ConnectionResetError, ConnectionAbortedError, EOFError):
        return False


def speaks_plain_http(host: str, port: int) -> bool:
    """Whether the server on ``port`` speaks plain HTTP *instead of* TLS: a TLS handshake fails
    and a plain request gets an HTTP answer. (A TLS port of Apache answers a plain request too,
    with a 400, so the handshake decides.)"""
    try:
        with (
            socket.create_connection((host, port), timeout=5) as raw,
            _context().wrap_socket(raw, server_hostname=host),
        ):
            return False
    except ssl.SSLError:
        pass
    except OSError:
        return False
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False


def _head(host: str, port: int, server_name: str, tls: bool, path: str = "/hub/login"):
    if tls:
        conn = http.client.HTTPSConnection(host, port, timeout=10, context=_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": server_name})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def check(
    server_name: str,
    https_port: int,
    http_port: int | None,
    hsts_max_age: int,
    host: str = "127.0.0.1",
) -> list[Finding]:
    """Findings about TLS versions, HSTS, the HTTP redirect and the certificate's lifetime."""
    name = "TLS"
    out: list[Finding] = []
    try:
        socket.create_connection((host, https_port), timeout=5).close()
    except OSError as err:
        fix = "start Apache (apachectl start / systemctl start apache2)"
        return [error(name, f"nothing answers on {host}:{https_port}: {err}", fix)]
    if speaks_plain_http(host, https_port):
        return [
            error(
                name,
                f"{host}:{https_port} answers plain HTTP, not TLS: browsers cannot connect "
                "with https://",
                "SSLEngine on in the virtual host for this port (hpchub install writes it), "
                "or set deploy.web.https_port to the port that serves TLS",
            )
        ]
    unknown = []
    for label, version in VERSIONS.items():
        result = accepts(host, https_port, server_name, version)
        if result is None:
            unknown.append(label)
        elif result and label not in WANTED:
            fix = "SSLProtocol -all +TLSv1.2 +TLSv1.3 in the virtual host (hpchub install)"
            out.append(error(name, f"{label} is accepted", fix))
        elif not result and label in WANTED:
            out.append(error(name, f"{label} is refused", "SSLProtocol -all +TLSv1.2 +TLSv1.3"))
    if unknown:
        what = (
            f"this machine's OpenSSL cannot offer {', '.join(unknown)}, so whether the "
            "server refuses them was not tested"
        )
        fix = "run doctor from a machine with an OpenSSL that still offers them"
        out.append(warning(name, what, fix))
    try:
        status, headers = _head(host, https_port, server_name, tls=True)
    except OSError as err:
        return [*out, error(name, f"HTTPS request failed: {err}", "check Apache's error log")]
    if hsts_max_age and "max-age" not in headers.get("strict-transport-security", ""):
        fix = "hpchub install (the vhost sets it)"
        out.append(error(name, "no Strict-Transport-Security header", fix))
    if http_port:
        try:
            status, headers = _head(host, http_port, server_name, tls=False)
        except OSError as err:
            what = f"nothing answers on port {http_port} ({err}): HTTP is not redirected"
            fix = "set deploy.web.http_port: null if that is intended"
            out.append(warning(name, what, fix))
        else:
            location = headers.get("location", "")
            if status not in (301, 302, 307, 308) or not location.startswith("https://"):
                what = f"http://{server_name}:{http_port}/ answers {status} instead of redirecting to HTTPS"
                fix = "hpchub install (the vhost redirects plain HTTP)"
                out.append(error(name, what, fix))
    days = certificate_days_left(host, https_port, server_name)
    if days is not None and days < 14:
        what = f"the certificate expires in {days:.0f} days"
        urgent = days < 3
        out.append(
            error(name, what, "renew the certificate")
            if urgent
            else warning(name, what, "renew it soon")
        )
    return all_ok(out, name, "TLS 1.2 and 1.3 only, HSTS, HTTP redirected to HTTPS")


def certificate_days_left(host: str, port: int, server_name: str) -> float | None:
    """Days until the server's certificate expires (None if it cannot be read)."""
    try:
        with (
            socket.create_connection((host, port), timeout=5) as sock,
            _context().wrap_socket(sock, server_hostname=server_name) as s,
        ):
            der = s.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None
    if not der:
        return None
    end = x509.load_der_x509_certificate(der).not_valid_after_utc
    return (end.timestamp() - clock.now()) / 86400
