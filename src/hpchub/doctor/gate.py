"""Is a login reachable around the SSO gate? Doctor sends one as a compute node would.

Compute nodes reach the hub's own port (for the API and the port callback), and that port
must not open a session for a password: with the gate on, the hub refuses a login that has
neither Apache's secret nor an exempt client. Doctor posts a bogus login there, naming a
client outside the exempt networks (the hub believes X-Forwarded-For from this machine only),
and looks at why it was refused: for the gate, or only for the password.
"""

from __future__ import annotations

import http.cookiejar
import secrets
import urllib.error
import urllib.parse
import urllib.request

from ..auth.frontend import GATE_REFUSAL, in_networks
from .findings import Finding, error, info, ok, warning

# Documentation addresses (RFC 5737): no real client has them.
_OUTSIDERS = ("192.0.2.1", "198.51.100.1", "203.0.113.1")
PROBE_USER = "hpchub-doctor-probe"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def probe_login(base: str, client: str, timeout: float = 15) -> tuple[int, str]:
    """POST a bogus login to ``base``/hub/login as if from ``client``: (status, page)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar), _NoRedirect
    )
    headers = {"X-Forwarded-For": client}
    url = base.rstrip("/") + "/hub/login"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    opener.open(urllib.request.Request(url, headers=headers), timeout=timeout).read()  # noqa: S310
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    form = {"username": PROBE_USER, "password": secrets.token_hex(16), "_xsrf": xsrf}
    body = urllib.parse.urlencode(form).encode()
    try:
        request = urllib.request.Request(url, body, headers)  # noqa: S310 - checked above
        with opener.open(request, timeout=timeout) as r:  # noqa: S310
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def check_gate_bypass(paths, probe=probe_login) -> list[Finding]:
    """With the gate on, a login sent straight to the hub's port is refused for the gate."""
    name = "SSO gate"
    if not paths.gate_on:
        return [info(name, "not checked: no gate (deploy.web.gate.enabled: false)")]
    if paths.remote_user_mode:
        return [ok(name, "remote_user: the hub takes identities only with Apache's secret")]
    exempt = [str(n) for n in paths.deploy.web.gate.exempt_networks]
    outsider = next((a for a in _OUTSIDERS if not in_networks(a, exempt)), None)
    if outsider is None:
        return [info(name, f"not checked: the gate exempts every network ({', '.join(exempt)})")]
    url = paths.hub_local_url
    try:
        status, page = probe(url, outsider)
    except OSError as err:
        return [warning(name, f"could not send a test login to {url}: {err}", "is the hub up?")]
    if status == 403 and GATE_REFUSAL in page:
        return [
            ok(
                name,
                f"a login sent straight to the hub's port ({url}) from outside the exempt "
                "networks is refused for the gate",
            )
        ]
    return [
        error(
            name,
            f"a login sent straight to the hub's port ({url}), as from {outsider} (outside the "
            f"exempt networks), reached the password check (HTTP {status}): anyone on a compute "
            "node can log in around the SSO gate with a password",
            "run hpchub install and restart the hub: with the gate on it must run "
            "hpchub.auth.gate.GatedPAMAuthenticator with the frontend secret "
            "(a jupyterhub_config.d file must not replace the authenticator)",
        )
    ]
