"""A person in a real browser (headless Chromium driven by Selenium): lands on the front page,
finds a conflict through the search box, opens its page and finds where to subscribe; on a phone's
width nothing needs scrolling sideways."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from feeds.app import create_app
from feeds.config import Settings
from feeds.store import Store
from tests.conftest import LiveServer, free_port
from tests.test_site import ingest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def base(store: Store, settings: Settings) -> str:
    port = free_port()
    settings = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await ingest(store, settings)
    return settings.base_url


def test_find_a_conflict_from_the_front_page_and_subscribe(
    base: str, settings: Settings, browser: webdriver.Chrome
) -> None:
    port = int(base.rsplit(":", 1)[1])
    with LiveServer(create_app(replace(settings, base_url=base), scheduler=False), port=port):
        browser.get(base + "/")
        assert browser.find_element(By.TAG_NAME, "h1").text == "The newest events"
        search = browser.find_element(By.ID, "q")
        search.send_keys("russian invasion")
        search.submit()
        WebDriverWait(browser, 10).until(expected_conditions.url_contains("/topics?q="))
        assert "Topics matching" in browser.find_element(By.TAG_NAME, "h1").text
        browser.find_element(By.LINK_TEXT, "Russian invasion of Ukraine").click()
        WebDriverWait(browser, 10).until(expected_conditions.url_to_be(f"{base}/topics/russian-invasion-of-ukraine"))
        assert browser.find_element(By.TAG_NAME, "h1").text == "Russian invasion of Ukraine"
        assert browser.find_element(By.CSS_SELECTOR, "figure.chart svg").size["height"] > 50
        links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, ".subscribe li a")}
        assert set(links) == {"RSS", "Atom", "JSON Feed", "OPML"}
        for href in links.values():
            assert httpx.get(href).status_code == 200
        # The stylesheet applied: the subscribe block is boxed, the chart's bars are coloured.
        assert browser.find_element(By.CSS_SELECTOR, ".subscribe").value_of_css_property("border-top-style") == "solid"
        # The older page of events and the day pages are a click away.
        browser.find_element(By.PARTIAL_LINK_TEXT, "February 2024").click()
        WebDriverWait(browser, 10).until(expected_conditions.url_contains("/news/2024/02/"))
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("Events of")


@pytest.mark.parametrize("path", ["/", "/topics", "/topics/russian-invasion-of-ukraine", "/news/2023/02/6/index.html"])
def test_pages_fit_a_phone_screen(base: str, settings: Settings, browser: webdriver.Chrome, path: str) -> None:
    port = int(base.rsplit(":", 1)[1])
    with LiveServer(create_app(replace(settings, base_url=base), scheduler=False), port=port):
        browser.set_window_size(375, 800)
        browser.get(base + path)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
