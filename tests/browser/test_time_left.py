"""Time left in a real headless Chromium: JupyterLab's status bar, its Extend action, the
warning before the limit, and the hub's home page. Saves artifacts/time-left.png (JupyterLab)
and artifacts/time-left-home.png (the home page)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.test_time_extend import squeue_limit_min

from .test_spawn_browser import ARTIFACTS, _login, _plain_lab, _stop_servers, page, testbed  # noqa: F401

pytestmark = pytest.mark.browser

# JupyterLab's notifications slide in from the right: wait until they are inside the window.
SETTLED = """() => [...document.querySelectorAll('.Toastify__toast')].every(
    t => t.getBoundingClientRect().right <= window.innerWidth)"""


def test_status_bar_extend_warning_and_home_page(page, testbed):  # noqa: F811
    user = testbed["users"][0]
    _stop_servers(testbed, user)
    page.context.grant_permissions(["notifications"])
    try:
        _login(page, testbed, user)
        _plain_lab(page)
        page.click("button[type=submit]")
        page.wait_for_url("**/lab**", timeout=180_000)
        item = page.locator(".hpchub-time-left")
        item.wait_for(timeout=120_000)
        page.wait_for_function(
            "document.querySelector('.hpchub-time-left').textContent.includes('Time left')"
        )
        # The job of this hub's server, as the status bar reads it (other hubs run alice's too).
        job = page.request.get(page.url.split("/lab")[0] + "/hpchub/time").json()["job_id"]
        before = squeue_limit_min(job)
        # Click the time: a notification with the Extend action; press it.
        item.click()
        extend = page.get_by_role("button", name=re.compile(r"Extend by"))
        extend.wait_for(timeout=30_000)
        no_news = page.get_by_role("button", name="No", exact=True)
        if no_news.count():
            no_news.click()  # JupyterLab's own question about news, not ours
        page.wait_for_function(SETTLED)
        page.screenshot(path=str(ARTIFACTS / "time-left.png"))
        extend.click()
        page.get_by_text(re.compile(r"Extended: .* left now")).wait_for(timeout=60_000)
        assert squeue_limit_min(job) == before + 60
        # Lower the limit as the user (users may): the page warns before the limit.
        elapsed = subprocess.run(
            ["squeue", "-h", "-j", job, "-o", "%M"], capture_output=True, text=True, check=True
        ).stdout.strip()
        parts = [int(x) for x in re.split(r"[-:]", elapsed)]
        elapsed_min = (parts[-3] * 60 if len(parts) >= 3 else 0) + parts[-2] + 1
        subprocess.run(
            [
                "sudo",
                "-n",
                "-u",
                user["name"],
                "scontrol",
                "update",
                f"JobId={job}",
                f"TimeLimit={elapsed_min + 20}",
            ],
            check=True,
            capture_output=True,
        )
        page.reload()
        page.get_by_text(re.compile(r"time limit ends in \d+m: save your work")).wait_for(
            timeout=120_000
        )
        page.wait_for_function(SETTLED)
        page.screenshot(path=str(ARTIFACTS / "time-left-warning.png"))
        # The home page: the time left and the Extend button.
        page.goto(testbed["hub_url"] + "/hub/home")
        box = page.locator(".hpchub-time")
        box.wait_for(timeout=30_000)
        assert re.search(r"\d+m", box.locator(".hpchub-time-left").inner_text())
        page.screenshot(path=str(ARTIFACTS / "time-left-home.png"), full_page=True)
        box.locator(".hpchub-extend").click()
        box.locator(".hpchub-time-msg", has_text="Extended.").wait_for(timeout=60_000)
        assert squeue_limit_min(job) == elapsed_min + 20 + 60
    finally:
        _stop_servers(testbed, user)
