"""Issue 3 in a real headless Chromium: log in, pick a profile, watch progress, land in JupyterLab."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def testbed():
    testbed_cmd = Path(sys.executable).with_name("hpchub-testbed")
    r = subprocess.run(
        [str(testbed_cmd), "info", "--json"], capture_output=True, text=True, env=os.environ
    )
    if r.returncode != 0:
        pytest.fail(f"testbed not available: {r.stderr}")
    info = json.loads(r.stdout)
    from tests.integration import hubclient

    hubclient.CA_FILE = info["tls_cert"]  # the front door (hub_url) is Apache, with TLS
    return info


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        # The testbed's certificate is self-signed (the test clients check it by its file).
        ctx = browser.new_context(
            viewport={"width": 1200, "height": 1100}, ignore_https_errors=True
        )
        pg = ctx.new_page()
        yield pg
        ctx.close()
        browser.close()


def _login(page, testbed, user) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(testbed["hub_url"] + "/hub/login")
    page.fill("#username_input", user["name"])
    page.fill("#password_input", user["password"])
    page.click("#login_submit")
    page.wait_for_url("**/hub/spawn**")


def _plain_lab(page) -> None:
    """JupyterLab in the usual queue: the form remembers the last app, and preselects a
    reservation open to the user (an earlier test's may still be in the form's 30 s view)."""
    page.select_option("#hpchub-app", "jupyterlab")
    if page.locator("#hpchub-reservation").count():
        page.select_option("#hpchub-reservation", "")


def _stop_servers(testbed, user):
    from tests.integration.hubclient import HubClient

    c = HubClient(testbed["hub_url"])
    c.login(user["name"], user["password"])
    c.make_token()
    for name in list(c.model().get("servers", {})):
        c.stop(name)
        c.wait_stopped(name)


def test_login_pick_profile_start_and_land_in_lab(page, testbed):
    user = testbed["users"][1]
    _stop_servers(testbed, user)
    _login(page, testbed, user)
    # The form: every choice is a labelled radio; the live state is shown.
    assert page.get_by_label("Medium").count() == 1
    assert page.locator("text=memory free").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "spawn-form.png"), full_page=True)
    # Keyboard use: the custom fields appear only for "Custom" (progressive enhancement).
    assert page.locator("#hpchub-custom").is_hidden()
    page.get_by_label("Custom").check()
    assert page.locator("#hpchub-custom").is_visible()
    page.get_by_label("Medium").check()
    _plain_lab(page)
    page.click("button[type=submit]")
    # The progress page, then JupyterLab.
    page.wait_for_url("**/lab**", timeout=180_000)
    page.wait_for_selector("#jp-main-dock-panel, .jp-LabShell", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"))
    _stop_servers(testbed, user)


def test_form_with_accounts_reservation_and_maintenance(page, testbed):
    """alice's form: her two Slurm accounts, a lab reservation open to her, a maintenance
    warning. Saved as artifacts/spawn-form-accounts.png."""
    if not testbed.get("accounting"):
        pytest.skip("this testbed runs without accounting")
    user = testbed["users"][0]
    lab, maint = f"shot-lab-{os.getpid()}", f"shot-maint-{os.getpid()}"
    made = []
    try:
        for name, words in (
            (
                lab,
                ["Users=alice", "CoreCnt=1", "StartTime=now", "Duration=20", "Flags=IGNORE_JOBS"],
            ),
            (
                maint,
                ["Users=root", "StartTime=now+3hours", "Duration=60", "Flags=MAINT,IGNORE_JOBS"],
            ),
        ):
            subprocess.run(
                [
                    "scontrol",
                    "create",
                    "reservation",
                    f"ReservationName={name}",
                    "Nodes=vm",
                    *words,
                ],
                check=True,
                capture_output=True,
            )
            made.append(name)
        import time

        time.sleep(31)  # the form's live state is at most 30 s old
        _login(page, testbed, user)
        assert page.get_by_label("The account this server's time is charged to").count() == 1
        assert page.locator("#hpchub-reservation option", has_text=lab).count() == 1
        assert page.locator(".hpchub-maintenance").count() == 1
        page.screenshot(path=str(ARTIFACTS / "spawn-form-accounts.png"), full_page=True)
    finally:
        for name in made:
            subprocess.run(["scontrol", "delete", f"ReservationName={name}"], capture_output=True)


def test_form_offers_gpus_per_partition(page, testbed):
    """The custom fields with the batch node's stand-in GPUs: type, count, what each partition
    has and how many are free. Saved as artifacts/spawn-form-gpus.png."""
    user = testbed["users"][1]
    _login(page, testbed, user)
    page.get_by_label("Custom").check()
    page.select_option("#custom-partition", "batch")
    assert "tesla GPUs free" in page.locator("#custom-partition option[value=batch]").inner_text()
    page.select_option("#custom-gpu-type", "tesla")
    page.fill("#custom-gpus", "1")
    assert "batch: up to 2 tesla" in page.locator("#custom-gpus-help").inner_text()
    page.screenshot(path=str(ARTIFACTS / "spawn-form-gpus.png"), full_page=True)
