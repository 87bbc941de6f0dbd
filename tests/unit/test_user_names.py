"""User names as sites have them: the one name rule, dotted names, and names from a realm."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml
from tornado import web
from tornado.httputil import HTTPHeaders

from hpchub.auth.gate import GatedPAMAuthenticator, GateRefused, gate_account
from hpchub.auth.hubconfig import auth_piece
from hpchub.auth.names import USERNAME_PATTERN, PAMAuthenticator
from hpchub.auth.remote_user import RemoteUserAuthenticator
from hpchub.cli.main import main
from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.core.coursepaths import expand_target
from hpchub.core.names import (
    DEFAULT_USER_PATTERN,
    NameRefused,
    is_name,
    is_unix_name,
    local_account,
)
from hpchub.slurm.jobscript import JobRequest
from hpchub.slurm.parsers import parse_hub_jobs

from .test_auth import handler

REALMS = ["example.org"]

# -- the name rule ------------------------------------------------------------------------------

ACCEPTED = ["anna.lee", "a.b.c", "anna.lee-2", "_svc.x", "a" * 32, "x", "anna."]
REFUSED = [
    ".",
    "..",
    ".anna",  # a leading dot: a hidden folder, and the first step to '..'
    "../alice",
    "anna.lee\n",  # re.match with '$' takes this; fullmatch does not
    "anna.lee\r",
    "\nanna.lee",
    "Anna.Lee",  # upper case: not a Unix account here (the hub lower-cases what users type)
    "ANNA",
    "-anna",  # would be an option to sudo -u or squeue -u
    "#0",  # sudo -u '#0' is uid 0
    "1000",
    "anna lee",
    "anna/lee",
    "anna@example.org",
    "a" * 33,
    "",
    "anna\x00",
    "ånna",
]


@pytest.mark.parametrize("name", ACCEPTED)
def test_the_rule_takes_dotted_names(name):
    assert is_unix_name(name)
    assert re.match(USERNAME_PATTERN, name)  # JupyterHub's own check (re.match) agrees


@pytest.mark.parametrize("name", REFUSED)
def test_the_rule_refuses_paths_options_newlines_and_upper_case(name):
    assert not is_unix_name(name)
    assert not re.match(USERNAME_PATTERN, name)


def test_a_dot_is_never_a_wildcard_in_the_patterns_built_from_the_rule():
    # The default gate pattern and JupyterHub's username_pattern hold the rule's own class,
    # where '.' is a literal: no name is a pattern for another.
    m = re.fullmatch(DEFAULT_USER_PATTERN, "annaxlee")
    assert m and m.group("user") == "annaxlee"  # a name of its own, not anna.lee
    assert local_account("annaxlee@example.org", REALMS) == "annaxlee"
    with pytest.raises(NameRefused):
        local_account("anna.lee@examplexorg", REALMS)  # the realm's dot is literal too


def test_hpchub_rules_for_slurm_and_realms():
    assert is_name("realm", "example.org") and is_name("realm", "cs.uni-x.example.org")
    for bad in ("EXAMPLE.ORG", "example..org", ".example.org", "example.org.", "-x.org", "x.org\n"):
        assert not is_name("realm", bad), bad


# -- a dotted name in what the hub builds from it -----------------------------------------------


def _job(user: str, server: str = "") -> JobRequest:
    return JobRequest(
        user=user,
        server_name=server,
        partitions=("jupyter-short",),
        memory_mib=512,
        cpus=1,
        time_seconds=3600,
        log_dir=f"/home/{user}/.hpchub/logs",
        workdir=f"/home/{user}",
        prefix_bin="/opt/hpchub/current/bin",
        port_low=40000,
        port_high=49999,
    )


def test_the_job_of_a_dotted_name():
    job = _job("anna.lee", "gpu")
    assert job.job_name == "jupyter-anna.lee-gpu"
    assert job.log_path == "/home/anna.lee/.hpchub/logs/jupyter-%j.log"
    for bad in ("..", ".anna", "Anna.Lee", "anna.lee\n"):
        with pytest.raises(ValueError, match="is not a user name"):
            _job(bad)


def test_squeue_lines_of_a_dotted_name_parse():
    line = "anna.lee|21|RUNNING|None|vm|hpchub:hpchub|jupyter-anna.lee\n"
    (job,) = parse_hub_jobs(line, "hpchub")
    assert (job.user, job.job_id, job.name) == ("anna.lee", "21", "jupyter-anna.lee")


def test_course_targets_take_the_name_as_one_folder():
    target = expand_target("/scratch/work/{user}/intro", "anna.lee", "/home/anna.lee")
    assert str(target) == "/scratch/work/anna.lee/intro"
    for bad in ("..", ".", "../root", "a/b"):
        with pytest.raises(ValueError, match="is not a user name"):
            expand_target("/scratch/work/{user}/intro", bad, "/home/x")


def test_sudoers_runas_lists_a_dotted_name(tmp_path):
    from hpchub.deploy.paths import DeployPaths
    from hpchub.deploy.render import sudoers

    site = parse_site({"hub": {"allowed_users": ["anna.lee"], "allowed_groups": ["jupyter"]}})
    text = sudoers(DeployPaths(site, tmp_path / "hpchub.yaml"))
    assert "_USERS = %jupyter, anna.lee, !root" in text
    if shutil.which("visudo"):  # sudo's own parser takes the dotted name
        from hpchub.deploy.checks import check_sudoers

        (tmp_path / "rule").write_text(text)
        result = check_sudoers(tmp_path / "rule")
        assert result.ok, result


# -- from a realm's name to the local account ---------------------------------------------------


def test_a_realm_of_the_site_is_cut_off_in_any_case():
    for name in ("anna.lee@example.org", "anna.lee@EXAMPLE.ORG", "Anna.Lee@Example.Org"):
        assert local_account(name, REALMS) == "anna.lee"
    assert local_account("Anna.Lee", REALMS) == "anna.lee"  # no realm: just lower case
    assert local_account("anna.lee@EXAMPLE.ORG", ["EXAMPLE.ORG"]) == "anna.lee"


def test_another_realm_is_refused_in_words():
    for name in ("anna.lee@other.org", "anna.lee@example.org.evil.net", "anna.lee@org"):
        with pytest.raises(NameRefused, match=r"this hub takes accounts of example\.org only"):
            local_account(name, REALMS)
    # Only the last '@' is the realm: what is left is no account name.
    assert not is_unix_name(local_account("anna@other.org@example.org", REALMS))


def test_without_realms_a_name_keeps_its_realm_and_the_rule_refuses_it():
    assert local_account("anna.lee@example.org") == "anna.lee@example.org"
    assert not is_unix_name(local_account("anna.lee@example.org"))


def test_the_username_map_comes_first_and_is_not_applied_twice():
    mapping = {"a.lee@partner.org": "anna.lee", "annalee": "anna.lee"}
    assert local_account("A.Lee@PARTNER.ORG", REALMS, mapping) == "anna.lee"
    assert local_account("annalee", REALMS, mapping) == "anna.lee"
    assert local_account("anna.lee", REALMS, mapping) == "anna.lee"


def test_lower_case_never_turns_another_alphabet_into_an_account():
    # The Kelvin sign lower-cases to an ASCII 'k': 'Karl' must not become karl.
    assert local_account("\u212aarl", REALMS) == "\u212aarl"
    assert not is_unix_name(local_account("\u212aarl@example.org", REALMS))


# -- the site file ------------------------------------------------------------------------------


def _hub(**hub):
    return parse_site({"hub": {"allowed_groups": ["jupyter"], **hub}}).hub


def test_site_realms_and_username_map():
    hub = _hub(
        realms=["EXAMPLE.ORG", "cs.example.org"], username_map={"A.Lee@Partner.org": "anna.lee"}
    )
    assert hub.realms == ["example.org", "cs.example.org"]
    assert hub.username_map == {"a.lee@partner.org": "anna.lee"}
    assert hub.account_of("Anna.Lee@EXAMPLE.ORG") == "anna.lee"
    assert hub.account_of("a.lee@partner.org") == "anna.lee"
    with pytest.raises(ValueError, match="from realm 'other.org'"):
        hub.account_of("anna@other.org")
    with pytest.raises(ValueError, match=r"'\.\.' is not a user name"):
        hub.account_of("..")


@pytest.mark.parametrize(
    ("hub", "words"),
    [
        ({"realms": ["example .org"]}, "hub.realms[0]: 'example .org' is not a realm"),
        ({"realms": ["@example.org"]}, "is not a realm: use a domain such as example.org"),
        ({"username_map": {"a@x.org": "Anna"}}, "'Anna' is not a Unix user or group name"),
        ({"username_map": {"a b": "anna"}}, "'a b' is not a login name"),
        ({"username_map": {"a\n": "anna"}}, "is not a login name: use printable ASCII"),
        (
            {"username_map": {"x@y.org": "annalee", "annalee": "anna.lee"}},
            "annalee is both mapped and a target",
        ),
    ],
)
def test_site_names_are_checked_in_words(hub, words):
    with pytest.raises(SiteConfigError) as err:
        parse_site({"hub": {"allowed_groups": ["jupyter"], **hub}})
    assert words in str(err.value)


def test_every_authenticator_gets_the_one_name_mapping():
    site = parse_site(
        {
            "hub": {
                "allowed_groups": ["jupyter"],
                "realms": ["EXAMPLE.ORG"],
                "username_map": {"a.lee@partner.org": "anna.lee"},
            }
        }
    )
    c = auth_piece(site)
    assert c.JupyterHub.authenticator_class == "hpchub.auth.names.PAMAuthenticator"
    assert c.Authenticator.username_pattern == USERNAME_PATTERN
    assert c.Authenticator.username_map == {"a.lee@partner.org": "anna.lee"}
    assert c.AccountNames.realms == ["example.org"]


# -- the authenticators -------------------------------------------------------------------------


async def test_pam_is_asked_about_the_local_account(pam_calls):
    auth = PAMAuthenticator(realms=REALMS, allow_all=True, username_pattern=USERNAME_PATTERN)
    user = await auth.get_authenticated_user(
        None, {"username": "Anna.Lee@EXAMPLE.ORG", "password": "x"}
    )
    assert user["name"] == "anna.lee"
    assert pam_calls == ["anna.lee"]  # PAM never saw the realm
    # A trailing newline, a path, a hidden name: JupyterHub's own check, with our rule, refuses.
    for name in ("anna.lee\n", "..", ".anna"):
        assert await auth.get_authenticated_user(None, {"username": name, "password": "x"}) is None
    assert pam_calls == ["anna.lee"]  # and PAM was not asked about them


async def test_pam_refuses_another_realm_before_trying_a_password(pam_calls):
    auth = PAMAuthenticator(realms=REALMS, allow_all=True, username_pattern=USERNAME_PATTERN)
    with pytest.raises(web.HTTPError) as err:
        await auth.get_authenticated_user(None, {"username": "anna.lee@other.org", "password": "x"})
    assert err.value.status_code == 403
    assert err.value.log_message % err.value.args == (
        "'anna.lee@other.org' is from realm 'other.org': this hub takes accounts of "
        "example.org only"
    )
    assert pam_calls == []


async def test_a_format_string_in_a_name_is_only_text(pam_calls):
    auth = PAMAuthenticator(realms=REALMS, allow_all=True)
    with pytest.raises(web.HTTPError) as err:
        await auth.authenticate(None, {"username": "%s%d@other.org", "password": "x"})
    assert "'%s%d@other.org'" in err.value.log_message % err.value.args


def test_normalize_username_is_idempotent_and_never_raises():
    auth = PAMAuthenticator(realms=REALMS, username_map={"a.lee@partner.org": "anna.lee"})
    for name in (
        "Anna.Lee@EXAMPLE.ORG",
        "a.lee@partner.org",
        "anna.lee",
        "x@other.org",
        "\u212aarl",
    ):
        once = auth.normalize_username(name)
        assert auth.normalize_username(once) == once
    assert auth.normalize_username("x@other.org") == "x@other.org"  # and validate refuses it


async def test_the_gate_names_the_account_through_the_realm(pam_calls):
    auth = GatedPAMAuthenticator(realms=REALMS)
    gate = handler(**{"X-Hpchub-Remote-User": "anna.lee@EXAMPLE.ORG"})
    data = {"username": "anna.lee", "password": "x"}
    assert await auth.authenticate(gate, data) == "anna.lee"
    # Typed with the realm: the same account.
    assert await auth.authenticate(gate, {**data, "username": "Anna.Lee@example.org"}) == "anna.lee"
    # A look-alike of the gate's account is another account: refused before PAM.
    assert await auth.authenticate(gate, {**data, "username": "annaxlee"}) is None
    assert pam_calls == ["anna.lee", "anna.lee"]
    # Passed the gate with an account of another realm: told why.
    foreign = handler(**{"X-Hpchub-Remote-User": "anna.lee@other.org"})
    with pytest.raises(web.HTTPError) as err:
        await auth.authenticate(foreign, data)
    assert "from realm 'other.org'" in err.value.log_message % err.value.args


def test_gate_account_with_realms():
    headers = HTTPHeaders({"X-Hpchub-Remote-User": "Anna.Lee@EXAMPLE.ORG"})
    assert gate_account(headers, DEFAULT_USER_PATTERN, realms=REALMS) == "anna.lee"
    with pytest.raises(GateRefused):  # no realms: the default pattern takes no '@'
        gate_account(headers, DEFAULT_USER_PATTERN)
    with pytest.raises(NameRefused):
        gate_account(
            HTTPHeaders({"X-Hpchub-Remote-User": "a@b.org"}), DEFAULT_USER_PATTERN, realms=REALMS
        )


@pytest.fixture
def remote(tmp_path):
    f = tmp_path / "frontend-secret"
    f.write_text("s" * 64 + "\n")
    return RemoteUserAuthenticator(frontend_secret_file=str(f), realms=REALMS), "s" * 64


async def test_remote_user_maps_the_realm_and_refuses_another(remote):
    auth, secret = remote
    ok = handler(**{"X-Hpchub-Remote-User": "NOBODY@EXAMPLE.ORG", "X-Hpchub-Frontend": secret})
    assert (await auth.authenticate(ok))["name"] == "nobody"
    foreign = handler(**{"X-Hpchub-Remote-User": "nobody@other.org", "X-Hpchub-Frontend": secret})
    with pytest.raises(web.HTTPError) as err:
        await auth.authenticate(foreign)
    assert err.value.status_code == 403
    assert "this hub takes accounts of example.org only" in err.value.log_message % err.value.args


# -- the commands that take a user name ---------------------------------------------------------


def _site_file(tmp_path) -> str:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump({"hub": {"allowed_groups": ["jupyter"], "realms": REALMS}}))
    return str(path)


def test_doctor_user_takes_the_realm_name_and_refuses_others(tmp_path, capsys, monkeypatch):
    seen = []
    monkeypatch.setattr("hpchub.cli.doctor_cmd.run_user_checks", lambda u, s: seen.append(u) or [])
    site = _site_file(tmp_path)
    assert main(["--config", site, "doctor", "--user", "anna.lee@EXAMPLE.ORG"]) == 0
    assert seen == ["anna.lee"]
    assert "'anna.lee@EXAMPLE.ORG' is the account anna.lee" in capsys.readouterr().out
    assert main(["--config", site, "doctor", "--user", "anna.lee@other.org"]) == 2
    assert "--user: 'anna.lee@other.org' is from realm 'other.org'" in capsys.readouterr().err
    assert main(["--config", site, "doctor", "--user", ".."]) == 2
    assert "--user: '..' is not a user name" in capsys.readouterr().err
    assert seen == ["anna.lee"]


def test_validate_warns_of_a_bare_dot_in_the_gates_realm_and_unknown_map_targets():
    from hpchub.config.site_warnings import warnings

    def found(site):
        return [str(w) for w in warnings(parse_site(site))]

    gate = {"enabled": True, "directives": ["AuthType shibboleth"]}
    loose = {**gate, "user_pattern": r"^(?P<user>[a-z.]+)@example.org$"}
    text = found({"deploy": {"web": {"gate": loose}}})
    assert any("a '.' after '@' matches any character" in w for w in text), text
    for fine in (r"^(?P<user>[a-z.]+)@example\.org$", r"^(?P<user>[a-z.]+)@[a-z.]+$"):
        text = found({"deploy": {"web": {"gate": {**gate, "user_pattern": fine}}}})
        assert not any("matches any character" in w for w in text), text
    site = {"hub": {"allowed_groups": ["root"], "username_map": {"x@y.org": "nosuch.user"}}}
    assert "hub.username_map.x@y.org: no user 'nosuch.user' on this node" in " ".join(found(site))


def test_a_profile_for_anna_lee_is_hers_alone_and_culled_by_her_policy():
    from hpchub.culling.policy import IdlePolicy, should_cull
    from hpchub.resources.catalog import Catalog
    from hpchub.resources.request import OptionsError, resolve_request

    site = parse_site(
        {
            "hub": {"allowed_groups": ["jupyter"]},
            "profiles": [
                {
                    "key": "hers",
                    "display_name": "Hers",
                    "partitions": ["jupyter-short"],
                    "memory": "1G",
                    "time": "2h",
                    "idle_timeout": "30m",
                    "users": ["anna.lee"],
                },
                {
                    "key": "everyone",
                    "display_name": "Everyone",
                    "partitions": ["jupyter-short"],
                    "memory": "1G",
                    "time": "2h",
                    "idle_timeout": "8h",
                },
            ],
        }
    )
    catalog = Catalog.from_site(site)
    assert resolve_request({"profile": "hers"}, catalog, "anna.lee", set()).idle_timeout == 1800
    for other in ("annaxlee", "anna-lee", "anna.le", "anna.lee.x"):
        with pytest.raises(OptionsError):
            resolve_request({"profile": "hers"}, catalog, other, set())
    policy = IdlePolicy.from_site(site, groups=lambda user: frozenset())
    server = {"full_name": "anna.lee/", "name": "", "user_options": {"profile": "hers"}}
    assert should_cull(policy, 31 * 60, server)
    assert not should_cull(policy, 29 * 60, server)


def test_the_operator_script_matches_a_dotted_hub_user_literally(tmp_path):
    from hpchub.deploy.paths import DeployPaths
    from hpchub.deploy.render import slurm_operator

    site = parse_site({"hub": {"allowed_groups": ["jupyter"]}, "deploy": {"hub_user": "hub.svc"}})
    text = slurm_operator(DeployPaths(site, tmp_path / "hpchub.yaml"))
    assert "grep -qxF -e 'hub.svc'" in text
    assert "grep -qx '" not in text
