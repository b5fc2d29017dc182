"""A person in a real browser (headless Chromium driven by Selenium): lands on the front page,
finds a conflict through the search box, opens its page and subscribes; reads an event's page
and its twins; walks back a day; subscribes to a combined and to a search feed from their pages;
no console errors from this site; on a phone's width nothing needs scrolling sideways. Screenshots
go to `test-artifacts/` (`FEEDS_TEST_ARTIFACTS` overrides)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import feedparser
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
from tests.conftest import REPO, LiveServer, free_port
from tests.frontends import require
from tests.test_site import ingest

ARTIFACTS = Path(os.environ.get("FEEDS_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    chromium, driver_path = require("chromium", "chromedriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
async def base(store: Store, settings: Settings) -> AsyncIterator[str]:
    port = free_port()
    served = replace(settings, base_url=f"http://127.0.0.1:{port}")
    await ingest(store, served)
    with LiveServer(create_app(served, scheduler=False), port=port) as server:
        yield server.url


def shot(browser: webdriver.Chrome, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def site_errors(browser: webdriver.Chrome, base: str) -> list[str]:
    """Console errors caused by this site. The example's images live on news sites, which a test
    machine without the internet cannot reach: those failures are the network's, not the page's."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE"
        and not (entry["message"].startswith("http") and not entry["message"].startswith(base))
    ]


def wait_for(browser: webdriver.Chrome, part: str) -> None:
    WebDriverWait(browser, 10).until(expected_conditions.url_contains(part))


def subscribe_links(browser: webdriver.Chrome) -> dict[str, str]:
    return {a.text: a.get_attribute("href") or "" for a in browser.find_elements(By.CSS_SELECTOR, ".subscribe li a")}


def check_feed(url: str) -> None:
    response = httpx.get(url)
    assert response.status_code == 200, url
    if "json" in response.headers["content-type"]:
        assert response.json()["items"], url
    else:
        parsed = feedparser.parse(response.content)
        assert parsed.bozo == 0 and parsed.entries, url


def test_find_a_conflict_from_the_front_page_and_subscribe(base: str, browser: webdriver.Chrome) -> None:
    browser.get(base + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "The newest events"
    shot(browser, "front-page")
    search = browser.find_element(By.ID, "q")
    search.send_keys("russian invasion")
    search.submit()
    wait_for(browser, "/topics?q=")
    assert "Topics matching" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.LINK_TEXT, "Russian invasion of Ukraine").click()
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(f"{base}/topics/russian-invasion-of-ukraine"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Russian invasion of Ukraine"
    assert browser.find_element(By.CSS_SELECTOR, "figure.chart svg").size["height"] > 50
    shot(browser, "topic-page")
    alternates = [e.get_attribute("href") for e in browser.find_elements(By.CSS_SELECTOR, "link[rel=alternate]")]
    links = subscribe_links(browser)
    assert set(links) == {"RSS", "Atom", "JSON Feed", "OPML"} and set(alternates) <= set(links.values())
    for name, href in links.items():
        if name != "OPML":
            check_feed(href)
    assert browser.find_element(By.CSS_SELECTOR, ".subscribe").value_of_css_property("border-top-style") == "solid"
    assert site_errors(browser, base) == []


def test_an_event_page_its_twins_and_the_day_before(base: str, browser: webdriver.Chrome) -> None:
    browser.get(base + "/news/2023/02/6/index.html")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Events of Monday, 6 February 2023"
    previous = browser.find_element(By.CSS_SELECTOR, "nav.pager a[rel=prev]")
    assert previous.get_attribute("href") == f"{base}/news/2023/01/8/index.html"
    previous.click()
    wait_for(browser, "/news/2023/01/8/index.html")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Events of Sunday, 8 January 2023"
    shot(browser, "day-page")
    browser.find_element(By.CSS_SELECTOR, "article.event a.permalink").click()
    WebDriverWait(browser, 10).until(lambda b: "/index.html" not in b.current_url)
    headline = browser.find_element(By.TAG_NAME, "h1").text
    shot(browser, "event-page")
    twins = {a.text: a.get_attribute("href") or "" for a in browser.find_elements(By.CSS_SELECTOR, "p.lead a[type]")}
    assert set(twins) == {"Markdown", "JSON", "XML"}
    assert httpx.get(twins["JSON"]).json()["headline"] == headline
    assert f"<headline>{headline}</headline>" in httpx.get(twins["XML"]).text.replace("&amp;", "&")
    assert f"# {headline}" in httpx.get(twins["Markdown"]).text
    assert site_errors(browser, base) == []


def test_subscribe_to_a_combined_and_to_a_search_feed(base: str, browser: webdriver.Chrome) -> None:
    browser.get(base + "/topics/russia+ukraine")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Russia + Ukraine"
    for name, href in subscribe_links(browser).items():
        if name != "OPML":
            check_feed(href)
    browser.get(base + "/topics?q=ukraine")
    browser.find_element(By.LINK_TEXT, "read them").click()
    wait_for(browser, "/search?q=ukraine")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Events mentioning ukraine"
    assert len(browser.find_elements(By.CSS_SELECTOR, "article.event")) > 5
    shot(browser, "search-page")
    for href in subscribe_links(browser).values():
        check_feed(href)
    assert site_errors(browser, base) == []


@pytest.mark.parametrize(
    "path", ["/", "/topics", "/topics/russian-invasion-of-ukraine", "/news/2023/02/6/index.html", "/search?q=ukraine"]
)
def test_pages_fit_a_phone_screen(base: str, browser: webdriver.Chrome, path: str) -> None:
    browser.set_window_size(375, 800)
    try:
        browser.get(base + path)
        overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"
    finally:
        browser.set_window_size(1200, 900)
