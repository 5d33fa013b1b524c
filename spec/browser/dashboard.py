#!/usr/bin/python3
"""The dashboard in a real browser (contract §11): headless Chromium driven by Selenium.

Run by spec/ui_spec.cpp against a daemon it started; exits non-zero with the reason on
the first thing that does not hold. Usage:
  dashboard.py main  URL CLI API_PORT REPO V1 V2     (v1 live; deploys v2 from the CLI)
  dashboard.py login URL TOKEN V1                    (the daemon has an API token)
  dashboard.py apps  URL BLOG_V1 SHOP_V1 SHOP_V2     (a server with apps blog and shop)
With SM_SCREENSHOTS=DIR, a PNG of each state is written there (docs/ui/ in the README).
"""
import os
import subprocess
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1100,1500", "--no-first-run", "--disable-extensions"):
        o.add_argument(a)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)


def shot(d, name):
    where = os.environ.get("SM_SCREENSHOTS")
    if where:
        d.save_screenshot(os.path.join(where, name + ".png"))


def wait(d, what, pred, timeout=15):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.05).until(lambda _: pred())
    except TimeoutException:
        raise SystemExit(f"timed out after {timeout} s waiting for {what}; page says:\n{d.find_element(By.TAG_NAME, 'body').text}")


def text(d, css):
    els = d.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else ""


def check(cond, msg):
    if not cond:
        raise SystemExit("FAILED: " + msg)


def live_commit(d):
    return text(d, '#live [data-field="commit"]')


def confirm_dialog(d, ok):
    wait(d, "the confirmation dialog", lambda: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
    d.find_element(By.ID, "confirm-ok" if ok else "confirm-cancel").click()
    wait(d, "the dialog to close", lambda: d.find_element(By.ID, "confirm").get_attribute("open") is None)


def main(url, cli, api_port, repo, v1, v2):
    d = browser()
    try:
        d.get(url)
        wait(d, "the live commit", lambda: live_commit(d) == v1[:12])
        wait(d, "the live commit's subject", lambda: text(d, '#live [data-field="subject"]') == "v1")
        check(text(d, '#live [data-field="health"]') == "healthy", "live health shown as the word healthy")
        wait(d, "the history", lambda: len(d.find_elements(By.CSS_SELECTOR, "#history tbody tr")) >= 1)
        wait(d, "the live log", lambda: "testapp v1" in d.find_element(By.ID, "log").text)
        wait(d, "the revisions offered", lambda: len(d.find_elements(By.CSS_SELECTOR, "#revisions option")) >= 3)
        shot(d, "dashboard")

        # A deploy started elsewhere (the CLI): its stages appear as they happen.
        deploy = subprocess.Popen([cli, "deploy", v2, "--api-port", api_port], cwd=repo,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait(d, "the deploy's health stage", lambda: "health" in
             [li.get_attribute("data-stage") for li in d.find_elements(By.CSS_SELECTOR, "#stages li")])
        shot(d, "deploying")
        out, _ = deploy.communicate(timeout=30)
        check(deploy.returncode == 0, "CLI deploy failed: " + out.decode())
        wait(d, "v2 live", lambda: live_commit(d) == v2[:12])
        stages = [li.get_attribute("data-stage") for li in d.find_elements(By.CSS_SELECTOR, "#stages li")]
        for s in ("checkout", "start", "health", "switch"):
            check(s in stages, f"stage {s} shown (saw {stages})")
        wait(d, "the deploy in the history", lambda: text(d, "#history tbody tr:first-child td:nth-child(2)") == "deploy"
             and text(d, "#history tbody tr:first-child td:nth-child(3)") == v2[:12])
        check(text(d, '#previous [data-field="commit"]') == v1[:12], "previous is v1")

        # Roll back, cancelled first: nothing happens.
        d.find_element(By.ID, "rollback").click()
        confirm_dialog(d, ok=False)
        time.sleep(0.5)
        check(live_commit(d) == v2[:12], "a cancelled rollback changes nothing")
        # Then confirmed, with the keyboard.
        d.find_element(By.ID, "rollback").send_keys(Keys.ENTER)
        wait(d, "the confirmation dialog", lambda: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
        shot(d, "confirm")
        d.switch_to.active_element.send_keys(Keys.ENTER)  # focus is on Confirm
        wait(d, "v1 live again", lambda: live_commit(d) == v1[:12])
        wait(d, "the rollback in the history",
             lambda: text(d, "#history tbody tr:first-child td:nth-child(2)") == "rollback")
        wait(d, "the rollback's result", lambda: "is live in slot a" in text(d, "#action-result"))

        # Maintenance on, after confirming; shown on the live card; then off again.
        d.find_element(By.ID, "maintenance").click()
        confirm_dialog(d, ok=True)
        wait(d, "maintenance on", lambda: "maintenance on" in text(d, "#action-result"))
        wait(d, "the live card saying so", lambda: text(d, '#live [data-field="maintenance"]').startswith("on since"))
        check(text(d, "#maintenance") == "Maintenance off…", "the button offers to end it")
        d.find_element(By.ID, "maintenance").click()
        confirm_dialog(d, ok=True)
        wait(d, "maintenance off", lambda: text(d, '#live [data-field="maintenance"]') == "off")

        # A canary started elsewhere: on the live card; Roll back ends it, after confirming.
        def canary():
            run = subprocess.run([cli, "deploy", v2, "--canary", "30", "--api-port", api_port], cwd=repo,
                                 capture_output=True, text=True, timeout=30)
            check(run.returncode == 0, "CLI canary failed: " + run.stdout + run.stderr)
            wait(d, "the canary on the live card", lambda: "gets 30% of new visitors" in text(d, '#live [data-field="canary"]'))
            check(d.find_element(By.ID, "promote").is_displayed(), "a Promote button while a canary runs")
        canary()
        check(text(d, "#rollback") == "End the canary…", "Roll back offers to end the canary")
        shot(d, "canary")
        d.find_element(By.ID, "rollback").click()
        confirm_dialog(d, ok=True)
        wait(d, "the canary ended", lambda: text(d, '#live [data-field="canary"]') == "none")
        check(live_commit(d) == v1[:12], "ending the canary leaves live as it was")
        # Again, and promoted from the page this time.
        canary()
        d.find_element(By.ID, "promote").click()
        confirm_dialog(d, ok=True)
        wait(d, "the canary live", lambda: live_commit(d) == v2[:12])
        wait(d, "no canary after promote", lambda: text(d, '#live [data-field="canary"]') == "none")
        check(not d.find_element(By.ID, "promote").is_displayed(), "no Promote button without a canary")
        # Back to v1 for what follows.
        run = subprocess.run([cli, "rollback", "--api-port", api_port], cwd=repo, capture_output=True, text=True,
                             timeout=30)
        check(run.returncode == 0, "CLI rollback failed: " + run.stdout + run.stderr)
        wait(d, "v1 live again after the canary", lambda: live_commit(d) == v1[:12])

        # An unknown revision: the daemon's 404 message, nothing changed.
        field = d.find_element(By.ID, "revision")
        field.send_keys("no-such-branch")
        d.find_element(By.ID, "deploy").click()
        confirm_dialog(d, ok=True)
        wait(d, "the 404 message", lambda: "HTTP 404" in text(d, "#action-result"))
        check("unknown commit" in text(d, "#action-result"), "the daemon's reason shown: " + text(d, "#action-result"))
        check(live_commit(d) == v1[:12], "a refused deploy changes nothing")
        shot(d, "refused")

        # Two tabs deploying at once: one deploys, the other gets the daemon's 409 message.
        first = d.current_window_handle
        d.switch_to.new_window("tab")
        d.get(url)
        wait(d, "the second tab's live commit", lambda: live_commit(d) == v1[:12])
        second = d.current_window_handle
        for handle in (first, second):
            d.switch_to.window(handle)
            field = d.find_element(By.ID, "revision")
            field.clear()
            field.send_keys(v2[:12])
        d.switch_to.window(first)
        d.find_element(By.ID, "deploy").click()
        confirm_dialog(d, ok=True)
        wait(d, "the first tab's deploy to start", lambda: "deploying" in text(d, "#action-result"))
        d.switch_to.window(second)
        wait(d, "the second tab to see the deploy running", lambda: "running" in text(d, "#operation")
             or "deploying" in text(d, "#operation") or "health" in text(d, "#operation"))
        d.find_element(By.ID, "deploy").click()
        confirm_dialog(d, ok=True)
        wait(d, "the 409 message", lambda: "HTTP 409" in text(d, "#action-result"))
        shot(d, "busy")
        d.close()
        d.switch_to.window(first)
        wait(d, "the first tab's deploy to succeed", lambda: "is live in slot b" in text(d, "#action-result"))
        # The live card follows the deploy's `finished` event; it may lag the answer a moment.
        wait(d, "v2 live after the first tab's deploy", lambda: live_commit(d) == v2[:12])

        # Readable on a phone: nothing wider than the screen.
        d.set_window_size(390, 1600)
        time.sleep(0.3)
        check(d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
              "the page fits a 390 px wide screen")
        shot(d, "phone")
    finally:
        d.quit()


def apps(url, blog_v1, shop_v1, shop_v2):
    """A server of apps: /ui/ lists them; each one's page shows and deploys that app only."""
    d = browser()
    try:
        d.get(url)
        wait(d, "two apps listed", lambda: len(d.find_elements(By.CSS_SELECTOR, "#app-list tbody tr")) == 2)
        rows = {r.get_attribute("data-app"): r.text for r in d.find_elements(By.CSS_SELECTOR, "#app-list tbody tr")}
        check(set(rows) == {"blog", "shop"}, f"the apps listed: {rows}")
        check(blog_v1[:12] in rows["blog"] and "blog.test" in rows["blog"], "blog's row: " + rows["blog"])
        check(shop_v1[:12] in rows["shop"] and "healthy" in rows["shop"], "shop's row: " + rows["shop"])
        shot(d, "apps")
        d.find_element(By.LINK_TEXT, "shop").click()
        wait(d, "shop's live commit", lambda: live_commit(d) == shop_v1[:12])
        check("shop" in d.title, "the page names the app: " + d.title)
        wait(d, "shop's history", lambda: len(d.find_elements(By.CSS_SELECTOR, "#history tbody tr")) >= 1)
        wait(d, "shop's live log", lambda: "testapp v1 of shop" in d.find_element(By.ID, "log").text)
        field = d.find_element(By.ID, "revision")
        field.send_keys(shop_v2[:12])
        d.find_element(By.ID, "deploy").click()
        confirm_dialog(d, ok=True)
        wait(d, "shop v2 live", lambda: live_commit(d) == shop_v2[:12], timeout=30)
        d.get(url)
        wait(d, "the list again", lambda: len(d.find_elements(By.CSS_SELECTOR, "#app-list tbody tr")) == 2)
        rows = {r.get_attribute("data-app"): r.text for r in d.find_elements(By.CSS_SELECTOR, "#app-list tbody tr")}
        check(shop_v2[:12] in rows["shop"], "shop's row shows v2: " + rows["shop"])
        check(blog_v1[:12] in rows["blog"], "blog untouched: " + rows["blog"])
    finally:
        d.quit()


def login(url, token, v1):
    d = browser()
    try:
        d.get(url)
        wait(d, "the login form", lambda: d.find_element(By.ID, "login").is_displayed())
        check(not d.find_element(By.ID, "dashboard").is_displayed(), "nothing shown before logging in")
        shot(d, "login")
        d.find_element(By.ID, "token").send_keys("wrong-token-0123456789" + Keys.ENTER)
        wait(d, "the wrong-token message", lambda: "wrong" in text(d, "#login-error"))
        d.find_element(By.ID, "token").send_keys(token + Keys.ENTER)
        wait(d, "the dashboard", lambda: live_commit(d) == v1[:12])
        cookie = d.get_cookie("sm_session")
        check(cookie is not None, "a session cookie")
        check(cookie.get("httpOnly") is True, f"the cookie is HttpOnly: {cookie}")
        check(cookie.get("sameSite") == "Strict", f"the cookie is SameSite=Strict: {cookie}")
        check(d.execute_script("return document.cookie") == "", "the page's script cannot read the cookie")
        d.refresh()  # the session outlives a reload
        wait(d, "the dashboard after a reload", lambda: live_commit(d) == v1[:12])
        d.find_element(By.ID, "logout").click()
        wait(d, "the login form after logging out", lambda: d.find_element(By.ID, "login").is_displayed())
        d.refresh()
        wait(d, "the login form after a reload", lambda: d.find_element(By.ID, "login").is_displayed())
        check(d.get_cookie("sm_session") is None, "the cookie is gone")
    finally:
        d.quit()


def compressed(public_url):
    """The app's page through the proxy (contract §15): Chromium gets it compressed (fewer
    bytes on the wire than in the page) and an EventSource on it gets each event as sent."""
    d = browser()
    try:
        d.get(public_url + "/page?bytes=200000")
        wait(d, "the page", lambda: "page from" in d.find_element(By.TAG_NAME, "body").text)
        nav = d.execute_script(
            "const n = performance.getEntriesByType('navigation')[0];"
            "return {encoded: n.encodedBodySize, decoded: n.decodedBodySize};")
        check(nav["decoded"] == 200000, f"the page's bytes as the app sent them: {nav}")
        check(0 < nav["encoded"] < nav["decoded"] / 5, f"compressed on the wire: {nav}")
        d.execute_script(
            "window.got = []; const es = new EventSource('/events?n=4&ms=400');"
            "es.onmessage = e => { window.got.push([e.data, performance.now()]); if (window.got.length == 4) es.close(); };")
        wait(d, "four events", lambda: len(d.execute_script("return window.got")) == 4)
        got = d.execute_script("return window.got")
        check([g[0] for g in got] == [f"event {i}" for i in range(4)], f"the events: {got}")
        gaps = [got[i][1] - got[i - 1][1] for i in range(1, 4)]
        check(all(g > 250 for g in gaps), f"each event arrives when sent, not held back: gaps {gaps} ms")
        res = d.execute_script(
            "return performance.getEntriesByType('resource').filter(r => r.name.includes('/events'))"
            ".map(r => ({encoded: r.encodedBodySize, decoded: r.decodedBodySize}));")
        print("events:", got, "resource:", res)
    finally:
        d.quit()


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"main": main, "login": login, "apps": apps, "compressed": compressed}[mode](*args)
    print("ok")
