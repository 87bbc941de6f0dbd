"""Time left and the Extend button: the policy's refusals, the generated helper, its sudo rule."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpchub.config.loader import SiteConfigError, parse_site
from hpchub.config.timelimit import ExtendSettings
from hpchub.deploy import checks
from hpchub.deploy import render as R
from hpchub.deploy.paths import DeployPaths
from hpchub.spawner.startmail import start_message
from hpchub.spawner.timepolicy import extension_refusal

H = 3600
POLICY = ExtendSettings(max_per_extension="4h", max_total="12h")


def refusal(asked, limit=H, extended=0, partition="short", cap=12 * H, policy=POLICY):
    return extension_refusal(asked, limit, extended, policy, partition, ["short"], cap)


@pytest.mark.core
def test_each_refusal_names_its_rule():
    assert refusal(H) is None
    assert refusal(6 * H) == "at most 4h per extension; you asked 6h"
    assert refusal(H, extended=12 * H) == "your server has used its 12h of extensions"
    assert refusal(4 * H, extended=10 * H) == (
        "your server has 2h of extensions left (of 12h); you asked 4h"
    )
    assert refusal(H, partition="long") == (
        "jobs in partition long cannot be extended; only in short"
    )
    assert refusal(4 * H, limit=10 * H) == (
        "partition short allows at most 12h in all; your server's limit is 10h, "
        "so at most 2h more; you asked 4h"
    )
    assert "whole minutes" in refusal(90)
    off = ExtendSettings(enabled=False)
    assert "does not extend" in refusal(H, policy=off)


@pytest.mark.core
def test_the_site_file_checks_the_policy():
    with pytest.raises(SiteConfigError, match="max_per_extension"):
        parse_site({"time": {"extend": {"max_per_extension": "8h", "max_total": "4h"}}})
    with pytest.raises(SiteConfigError, match="time.extend.partitions"):
        parse_site({"time": {"extend": {"partitions": ["nowhere"]}}})


def paths(data=None) -> DeployPaths:
    return DeployPaths(parse_site(data or {}), Path("/etc/hpchub/hpchub.yaml"))


def test_sudo_rule_runs_only_the_helper_as_slurm_user_and_visudo_accepts_it(tmp_path):
    text = R.sudoers(paths())
    assert "jupyterhub-daemon ALL=(slurm) NOPASSWD: /etc/hpchub/hpchub-extend-job *" in text
    off = R.sudoers(paths({"time": {"extend": {"enabled": False}}}))
    assert "extend-job" not in off
    assert all(
        "extend-job" not in str(f.path)
        for f in R.render_all(paths({"time": {"extend": {"enabled": False}}}))
    )
    if Path("/usr/sbin/visudo").exists():
        f = tmp_path / "hpchub"
        f.write_text(text)
        assert checks.check_sudoers(f).ok


FAKE = """#!/bin/sh
# a stand-in squeue/scontrol: prints what the test put in $FAKE_OUT, logs its arguments
echo "$0 $*" >> {log}
case "$1" in
  -h) cat {queue} ;;
  show) echo "PartitionName=short MaxTime=$(cat {maxtime}) State=UP" ;;
  update) exit 0 ;;
esac
"""


@pytest.fixture
def helper(tmp_path):
    log, queue, maxtime = tmp_path / "log", tmp_path / "queue", tmp_path / "maxtime"
    for name in ("squeue", "scontrol"):
        exe = tmp_path / name
        exe.write_text(FAKE.format(log=log, queue=queue, maxtime=maxtime))
        exe.chmod(0o755)
    site = {
        "hub": {"name": "hub1", "allowed_groups": ["jupyter"]},
        "slurm": {
            "bin_dir": str(tmp_path),
            "partitions": [{"name": "short", "max_time": "12h"}, {"name": "long"}],
            "default_partition": "short",
        },
        "profiles": [
            {"key": "p", "display_name": "P", "partitions": ["short"], "memory": "1G", "time": "1h"}
        ],
        "time": {"extend": {"partitions": ["short"], "max_per_extension": "4h"}},
    }
    script = tmp_path / "hpchub-extend-job"
    script.write_text(R.extend_helper(paths(site)))
    assert checks.check_python(script).ok

    def run(
        args,
        owner="alice",
        state="RUNNING",
        part="short",
        limit="01:00:00",
        comment="hpchub:hub1",
        max_time="8:00:00",
    ):
        queue.write_text(f"{owner}|{state}|{part}|{limit}|{comment}\n")
        maxtime.write_text(max_time)
        log.write_text("")
        p = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            env={"PATH": os.environ["PATH"]},
        )
        return p.returncode, p.stderr.strip(), log.read_text()

    return run


@pytest.mark.core
def test_the_helper_changes_only_what_fits(helper):
    code, err, log = helper(["alice", "42", "120"])
    assert code == 0, err
    assert "update JobId=42 TimeLimit=120" in log
    for args, kw, words in [
        (["bob", "42", "120"], {}, "does not belong to bob"),
        (["alice", "42", "120"], {"comment": "hpchub:other"}, "not a job of this hub"),
        (["alice", "42", "120"], {"state": "PENDING"}, "not RUNNING"),
        (["alice", "42", "120"], {"part": "long"}, "partition long may not be extended"),
        (["alice", "42", "400"], {}, "at most 240 min per extension"),
        (["alice", "42", "540"], {"limit": "6:00:00"}, "allows at most 480 min"),
        (["alice", "42", "30"], {}, "must be above the current one"),
        (["alice", "42;x", "120"], {}, "is not a job id"),
        (["root x", "42", "120"], {}, "is not a user name"),
        (["alice", "42", "120", "extra"], {}, "usage"),
    ]:
        code, err, log = helper(args, **kw)
        assert code != 0 and words in err, (args, err)
        assert "update" not in log


def test_start_mail_says_how_long_it_waited_and_where_to_go():
    site = parse_site({"time": {"email": {"enabled": True, "domain": "example.org"}}})
    msg = start_message(
        site.time.email, "alice", "Your Jupyter server", 754, "https://h/user/alice/"
    )
    assert msg["To"] == "alice@example.org"
    assert "waited 12m in the queue" in msg.get_content()
    assert "https://h/user/alice/" in msg.get_content()


async def test_start_mail_reaches_a_real_smtp_server():
    """send_start_mail over real SMTP to aiosmtpd; the spawner is a stand-in, the mail is not."""
    import logging
    from types import SimpleNamespace

    from aiosmtpd.controller import Controller

    from hpchub.spawner.startmail import send_start_mail

    got = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            got.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd's Controller needs one named)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = Controller(Keep(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        site = parse_site(
            {
                "hub": {"allowed_groups": ["jupyter"], "public_url": "https://hub.example.org"},
                "time": {
                    "queue_notice_after": "1m",
                    "email": {
                        "enabled": True,
                        "smtp_host": "127.0.0.1",
                        "smtp_port": port,
                        "sender": "jupyter@example.org",
                        "domain": "example.org",
                    },
                },
            }
        )
        user = SimpleNamespace(name="alice", server_url=lambda name: "/user/alice/")
        sp = SimpleNamespace(site=site, name="", user=user, log=logging.getLogger("t"))
        await send_start_mail(sp, 30)  # started soon enough: no mail
        assert got == []
        await send_start_mail(sp, 600)
        assert len(got) == 1
        assert got[0].mail_from == "jupyter@example.org"
        assert got[0].rcpt_tos == ["alice@example.org"]
        body = got[0].content.decode()
        assert "waited 10m in the queue" in body and "https://hub.example.org/user/alice/" in body
    finally:
        ctl.stop()


def test_hub_pages_render_the_time_box_and_the_start_notice():
    """home.html and spawn_pending.html over JupyterHub's own templates, as the hub loads them."""
    import jinja2
    import jupyterhub._data

    from hpchub.hub.pieces import HUB_TEMPLATES

    stock = Path(jupyterhub._data.DATA_FILES_PATH) / "templates"
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(HUB_TEMPLATES)),
            jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader(str(stock))}),
            jinja2.FileSystemLoader(str(stock)),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True)
    site = parse_site({})
    notes = {
        "label": "Your server",
        "time": {
            "running": True,
            "end": 1e9,
            "warn_before_s": [1800, 300],
            "extend": {
                "enabled": True,
                "step_s": 3600,
                "step": "1h",
                "left": "2h",
                "refusal": None,
            },
        },
    }
    sp = type("Sp", (), {"name": "", "site": site, "home_notes": lambda self: notes})()
    user = type(
        "U",
        (),
        {
            "name": "alice",
            "all_spawners": lambda self, include_default=True: [sp] if include_default else [],
            "spawner": sp,
            "spawners": {},
        },
    )()
    for name, context in (
        ("home.html", {"user": user}),
        ("spawn_pending.html", {"user": user, "spawner": sp, "progress_url": "/p"}),
    ):
        html = env.get_template(name).render(
            base_url="/hub/",
            prefix="/",
            static_url=lambda *a, **k: "",
            default_server=sp,
            named_server_limit_per_user=0,
            **context,
        )
        if name == "home.html":
            assert 'data-url="/hub/api/hpchub/time/alice/"' in html
            assert "Extend by 1h" in html
        else:
            assert "Notify me when it starts" in html and "var after = 60;" in html
