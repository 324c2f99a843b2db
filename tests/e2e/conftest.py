"""Fixtures for the browser tests: Debian's Chromium driven by Playwright (no browser download),
and the box (a real `pbx run` and `pbx web` over one SQLite file).

Screenshots are written only when asked: `PBX_SCREENSHOTS=1 .venv/bin/python -m pytest tests/e2e`
saves every page the tests `shoot` under docs/screenshots/ (or PBX_SCREENSHOTS=DIR: there), at
desktop and phone size; a plain run checks the same pages at both sizes and writes nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.conftest import CoreProcess, WebProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
"""What Chromium needs here: root (no sandbox), no GPU, and no calls home (the network is
closed, and every refused connection costs time)."""

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module. Not per session: Playwright's sync API keeps an asyncio
    loop marked running on this thread while it lives, and later tests call asyncio.run()."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Box:
    core: CoreProcess
    web: WebProcess

    @property
    def data(self) -> Path:
        return self.core.data

    @property
    def sip(self) -> tuple[str, int]:
        return self.core.host, self.core.port


@pytest.fixture
def box(core_factory: type[CoreProcess], web_factory: type[WebProcess], tmp_path: Path) -> Box:
    """A fresh box: nobody has logged in yet (first boot)."""
    data = tmp_path / "var"
    core = core_factory(data=data)
    core.start()
    web = web_factory(data=data)
    web.start()
    return Box(core, web)


def new_context(browser: Browser, box: Box, **options: Any) -> BrowserContext:
    """A browser profile of its own (cookies, language: `locale="ru-RU"` sends Accept-Language
    ru-RU) on the box's setup page."""
    ctx = browser.new_context(base_url=box.web.url, viewport=DESKTOP, **options)
    ctx.set_default_timeout(15_000)
    return ctx


@pytest.fixture
def context(browser: Browser, box: Box) -> Iterator[BrowserContext]:
    ctx = new_context(browser, box)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshots() -> Path | None:
    """Where screenshots go: PBX_SCREENSHOTS (a directory, or 1 for docs/screenshots/), or
    None (not set: none are written)."""
    wanted = os.environ.get("PBX_SCREENSHOTS", "")
    if wanted in ("", "0"):
        return None
    return SCREENSHOTS if wanted == "1" else Path(wanted).resolve()


def shoot(page: Page, name: str) -> None:
    """Check the page at desktop and phone size: at phone size nothing but a table's own
    scroller may be wider than the screen. When asked (PBX_SCREENSHOTS), save it at both sizes
    too, as NAME-desktop.png and NAME-phone.png."""
    folder = screenshots()
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        if folder is not None:
            page.screenshot(path=folder / f"{name}-{label}.png", full_page=True)
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= size["width"], (
            f"{name}: the page is {overflow} px wide on a {size['width']} px screen"
        )
    page.set_viewport_size(DESKTOP)
