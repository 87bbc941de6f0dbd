"""Issue 16 in headless Chromium: alice's JupyterLab shows her jobs (jupyterlab-slurm) and the
site's Scratch favourite in the file browser. Saved as artifacts/jobs-panel.png."""

from __future__ import annotations

import pytest

from tests.integration.test_files_and_jobs_panel import bobs_job  # noqa: F401 - a fixture

from .test_spawn_browser import ARTIFACTS, _login, _plain_lab, _stop_servers, page, testbed  # noqa: F401

pytestmark = pytest.mark.browser


def test_jobs_panel_and_scratch_favourite(page, testbed, bobs_job):  # noqa: F811 - fixtures
    user = testbed["users"][0]
    _stop_servers(testbed, user)
    _login(page, testbed, user)
    try:
        page.get_by_label("Small, long-running").check()
        _plain_lab(page)
        page.click("button[type=submit]")
        page.wait_for_url("**/lab**", timeout=180_000)
        # A fresh workspace (an earlier run may have left the dashboard open): the launcher.
        page.goto(page.url.split("?")[0] + "?reset")
        page.wait_for_selector(".jp-LauncherCard", timeout=120_000)
        # The file browser starts in the home, and the favourites list offers Scratch.
        crumbs = page.locator(".jp-BreadCrumbs").first
        crumbs.locator("text=alice").wait_for(timeout=30_000)
        page.locator(".jp-Favorites-item", has_text="Scratch").wait_for(timeout=30_000)
        # The jobs panel, from the launcher's HPC Tools; it lists her server's job.
        page.locator(".jp-LauncherCard", has_text="Slurm Dashboard").first.click()
        table = page.locator("#jp-main-dock-panel")
        table.get_by_text(f"jupyter-{user['name']}").first.wait_for(timeout=60_000)
        table.get_by_text("RUNNING").first.wait_for(timeout=60_000)
        # bob's job is in the queue, not in her panel (the testbed's PrivateData=jobs).
        assert "bobs-private-job" not in table.inner_text()
        page.screenshot(path=str(ARTIFACTS / "jobs-panel.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "jobs-panel-failed.png"))
        raise
    finally:
        _stop_servers(testbed, user)
