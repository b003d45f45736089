"""A real browser for the pages people look at: Debian's chromium driven by Selenium through chromium-driver.

Nothing is downloaded: the driver and browser are the machine's (``.ci/run`` installs them), and Selenium
Manager is kept offline. Off CI a machine without them skips; on CI their absence fails the test.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

WINDOW = (1366, 900)  # a laptop's width: pages must not scroll sideways at it


def _found(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail(f"CI installs Debian's chromium and chromium-driver (.ci/run); {names[0]} is missing")
    pytest.skip(f"no {names[0]} here (apt-get install chromium chromium-driver); CI runs this test")


@contextmanager
def chromium(profile: Path, window: tuple[int, int] = WINDOW) -> Iterator["webdriver.Chrome"]:  # noqa: F821
    """A headless chromium session with its own profile folder; closed on exit."""
    browser, driver = _found("chromium", "chromium-browser"), _found("chromedriver", "chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--window-size={window[0]},{window[1]}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    session.set_page_load_timeout(60)
    try:
        yield session
    finally:
        session.quit()


def horizontal_overflow(session) -> int:
    """Pixels the page scrolls sideways (0 when it reads at the window's width)."""
    return int(session.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def screenshot_pixels(session, path: Path) -> np.ndarray:
    """The visible page as grey levels, saved to ``path``: a test checks it is a page, not a blank."""
    from PIL import Image

    session.save_screenshot(str(path))
    return np.asarray(Image.open(path).convert("L"), dtype=np.float32)
