"""The progress page's start notice in a real headless Chromium: the job waits in the queue
(held), the user asks to be notified, the job is released, and the page raises a browser
Notification. Headless Chromium shows no OS notification, so an init script records each
Notification the page creates (and still creates the real one) through a binding, which
outlives the page's navigation to JupyterLab right after. Saves
artifacts/queue-start-notice.png."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import QueueHold

from .test_spawn_browser import ARTIFACTS, _login, _plain_lab, _stop_servers, page, testbed  # noqa: F401

pytestmark = pytest.mark.browser

RECORD_NOTIFICATIONS = """(() => {
  const Real = window.Notification;
  if (!Real) return;
  function Recorded(title, options) {
    window.__hpchubNotified(String(title), String((options || {}).body || ""));
    return new Real(title, options);
  }
  Recorded.prototype = Real.prototype;
  Object.defineProperty(Recorded, "permission", {get: () => Real.permission});
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
})();"""


def test_notify_me_when_a_queued_server_starts(page, testbed):  # noqa: F811
    user = testbed["users"][2]
    notice_after = 20  # the testbed site file's time.queue_notice_after
    _stop_servers(testbed, user)
    notified: list[tuple[str, str]] = []
    page.expose_function("__hpchubNotified", lambda title, body: notified.append((title, body)))
    page.add_init_script(RECORD_NOTIFICATIONS)
    try:
        _login(page, testbed, user)
        page.get_by_label("Small, long-running").check()
        # The form remembers the last app (another test opened carol's desktop): ask for Lab.
        _plain_lab(page)
        with QueueHold(user["name"], testbed["nodes"]["jupyter"]) as hold:
            page.click("button[type=submit]")
            hold.hold_next()
            page.wait_for_url("**/spawn-pending/**", timeout=60_000)
            button = page.get_by_role("button", name="Notify me when it starts")
            button.wait_for(timeout=60_000)
            # The user allows notifications when the browser asks.
            page.context.grant_permissions(["notifications"])
            button.click()
            page.get_by_text("You will be notified.").wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "queue-start-notice.png"), full_page=True)
            time.sleep(notice_after + 2)  # the queue wait under test; no event marks its passing
            assert notified == []
            hold.release()
            page.wait_for_url("**/lab**", timeout=180_000)
        assert len(notified) == 1, notified
        title, body = notified[0]
        assert title == "Your Jupyter server has started"
        assert "in the queue" in body
    finally:
        _stop_servers(testbed, user)
