"""Issue 16 item 1 in a real headless Chromium, through Apache: choose the desktop on the form,
land in it and see it draw; then open VS Code in the same server and see its editor.

Screenshots: artifacts/spawn-form-apps.png, artifacts/app-desktop.png, artifacts/app-vscode.png
and artifacts/lab-launcher-apps.png (JupyterLab's launcher with a tile for each app).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from .test_spawn_browser import ARTIFACTS, _login, _stop_servers, page, testbed  # noqa: F401

pytestmark = pytest.mark.browser

# Distinct colours in a sample of the noVNC canvas: a black or one-colour screen has one or two.
CANVAS_COLOURS = """() => {
  const c = document.querySelector('#screen canvas');
  if (!c || !c.width || !c.height) return 0;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < d.length; i += 4 * 97) seen.add(d[i] << 16 | d[i + 1] << 8 | d[i + 2]);
  return seen.size;
}"""


def test_desktop_from_the_form_draws_and_vscode_opens_its_editor(page, testbed):  # noqa: F811
    user = testbed["users"][2]
    _stop_servers(testbed, user)
    account = pwd.getpwnam(user["name"])
    sample = Path(account.pw_dir) / "hello-apps.py"
    sample.write_text("print('hello from VS Code')\n")
    os.chown(sample, account.pw_uid, account.pw_gid)
    try:
        _login(page, testbed, user)
        page.get_by_label("Custom").check()
        page.fill("#custom-memory", "2G")
        page.select_option("#hpchub-app", "desktop")
        page.locator("#hpchub-app").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "spawn-form-apps.png"), full_page=True)
        page.click("button[type=submit]")
        # The server opens in the desktop: noVNC connects and Xfce draws.
        page.wait_for_url("**/desktop/**", timeout=180_000)
        page.wait_for_selector("#screen canvas", timeout=120_000)
        page.wait_for_function(f"({CANVAS_COLOURS})() > 8", timeout=120_000, polling=1000)
        page.wait_for_function(
            "document.querySelector('#status').textContent.includes('Connected')",
            timeout=30_000,
        )
        page.screenshot(path=str(ARTIFACTS / "app-desktop.png"))
        # VS Code in the same server: open a file of carol's from the explorer in its editor.
        base = page.url.split("/desktop/")[0]
        page.goto(base + "/vscode/")
        page.wait_for_selector(".monaco-workbench .part.editor", timeout=180_000)
        page.locator(".explorer-folders-view .monaco-list-row", has_text=sample.name).click()
        page.wait_for_selector(
            ".monaco-editor .view-lines:has-text('hello from VS Code')", timeout=60_000
        )
        page.screenshot(path=str(ARTIFACTS / "app-vscode.png"))
        # JupyterLab's launcher has a tile for each app.
        page.goto(base + "/lab")
        for title in ("Desktop", "VS Code"):
            card = page.locator(".jp-LauncherCard", has_text=title).first
            card.wait_for(timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / "lab-launcher-apps.png"))
    finally:
        _stop_servers(testbed, user)
        sample.unlink(missing_ok=True)
