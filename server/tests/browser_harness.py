"""The browser tests' harness: a context per test that watches for what should never happen
(dialogs, console errors, refusals by the Content-Security-Policy), and signing in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page, Request
from playwright.sync_api import expect as pw_expect

VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 10_000


# Every page reports what the Content-Security-Policy refused: anything refused is something
# that tried to run or load where it should not.
WATCH_CSP = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || e.sample || ""));
});
"""


@dataclass
class Watch:
    """What happened in a page that should not have: dialogs, console errors, uncaught errors.
    ``confirms`` collects the ``data-confirm`` questions, which are answered yes."""

    problems: list[str] = field(default_factory=list)
    confirms: list[str] = field(default_factory=list)
    allow_confirm: bool = True
    documents: set[str] = field(default_factory=set)  # the URLs navigated to

    def on_dialog(self, dialog: Dialog) -> None:
        if dialog.type == "confirm" and self.allow_confirm:
            self.confirms.append(dialog.message)
            dialog.accept()
        else:
            self.problems.append(f"{dialog.type} dialog: {dialog.message}")
            dialog.dismiss()

    def on_request(self, request: Request) -> None:
        if request.is_navigation_request():
            self.documents.add(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        # A page's own status is for its test to check (some expect a 404), and the browser
        # asks for /favicon.ico by itself on the raw JSON (HTML pages name their icon); any
        # other resource failing to load is a problem.
        where = message.location.get("url", "")
        if message.text.startswith("Failed to load resource") and (
            where in self.documents or where.endswith("/favicon.ico")
        ):
            return
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text} ({where})")

    def attach(self, page: Page) -> None:
        page.on("request", self.on_request)
        page.on("dialog", self.on_dialog)
        page.on("console", self.on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))


def new_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, **options)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(WATCH_CSP)
    return context


def sign_in(page: Page, email: str, password: str) -> None:
    """Through the login form, as a person would (pressing Enter in the password field)."""
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()
    pw_expect(page.get_by_role("heading", name="Sign in to Bugnet")).to_have_count(0)


@dataclass
class Tab:
    page: Page
    watch: Watch

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations || []"))
