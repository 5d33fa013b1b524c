#!/usr/bin/python3
"""Loads the dashboard LOADS times in headless Chromium (a fresh tab each time) and prints
the median and worst first contentful paint and time until live, history and revisions
are shown, both from the start of navigation. Used by bench/ui.sh."""
import statistics
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

url, loads = sys.argv[1], int(sys.argv[2])
o = webdriver.ChromeOptions()
for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1100,1500"):
    o.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
READY = """return document.querySelectorAll('#history tbody tr').length >= 20 &&
  document.querySelector('#live [data-field="subject"]').textContent !== '—' &&
  document.querySelectorAll('#revisions option').length > 0 ? performance.now() : null"""
FCP = "const p = performance.getEntriesByName('first-contentful-paint'); return p.length ? p[0].startTime : null"
fcp, ready = [], []
try:
    d.get("about:blank")
    for _ in range(loads):
        d.switch_to.new_window("tab")
        d.get(url)
        ready.append(WebDriverWait(d, 20, poll_frequency=0.005).until(lambda drv: drv.execute_script(READY)))
        fcp.append(WebDriverWait(d, 5).until(lambda drv: drv.execute_script(FCP)))
        d.close()
        d.switch_to.window(d.window_handles[0])
finally:
    d.quit()
print(f"first contentful paint: median {statistics.median(fcp):.1f} ms, worst {max(fcp):.1f} ms")
print(f"live, history and revisions shown: median {statistics.median(ready):.1f} ms, worst {max(ready):.1f} ms")
