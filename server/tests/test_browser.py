"""The web UI in a real headless browser (Debian's chromium, driven by Playwright) against a real
``bugnet serve`` fed by a real Flask app through the real SDK: sign in, find the issue, read its
frame, variables, breadcrumbs and request, resolve it and see it regress, search, bulk-ignore;
an attacker's event runs no script and breaks no layout; outsiders get 404s, forms need their
CSRF token, the keyboard gets everywhere. The run also writes the README's screenshots.

SQLite only: the pages run the same queries on PostgreSQL, which the HTTP-level web tests cover
on both; a browser run per database would double the slowest module for nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"the browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

import browser_checks as checks  # noqa: E402
import browser_feed as feed  # noqa: E402
from browser_harness import Tab, Watch, new_context, sign_in  # noqa: E402
from conftest import Server, start_server, stop_server  # noqa: E402
from playwright.sync_api import Browser, BrowserContext, Page  # noqa: E402
from playwright.sync_api import expect as pw_expect  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "browser-password-1"


# -- The server, its users, and what the shop reported --------------------------------------


@pytest.fixture(scope="module")
def bugnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of the module's own: its lists hold only what these tests sent, as the
    screenshots should."""
    data_dir = tmp_path_factory.mktemp("bugnet-browser")
    running = start_server(data_dir, f"sqlite:///{data_dir / 'bugnet.sqlite3'}")
    yield running
    assert stop_server(running) == 0


@dataclass
class Project:
    slug: str
    dsn: str
    issues: dict[str, int] = field(default_factory=dict)  # title: id

    @property
    def id(self) -> int:
        return int(self.dsn.rsplit("/", 1)[1])

    @property
    def path(self) -> str:
        return f"/projects/default/{self.slug}/"

    def issue(self, prefix: str) -> int:
        return next(pk for title, pk in self.issues.items() if title.startswith(prefix))


@dataclass
class Shop:
    app: Path
    web: Project  # four issues of a Flask shop, left as they are (screenshots, search, keys)
    checkout: Project  # one issue, resolved and regressed by its test
    bulk: Project  # three issues, two of them ignored by its test
    hostile: Project  # an attacker's event
    outsider: str  # a user in no team


SHOP_PATHS = ("/checkout/7?tenant=acme&coupon=SPRING", "/orders/Z-9?tenant=globex",
              "/invoices/3?tenant=initech", "/stock/TEA-1?tenant=acme")  # fmt: skip
# More of the same from other users, so that the list's counts differ.
MORE_PATHS = ("/checkout/8?tenant=acme&user=bob", "/orders/Z-9?tenant=globex&user=bob",
              "/checkout/9?tenant=acme&user=cy")  # fmt: skip


# One ``bugnet shell`` for all of it: each ``bugnet`` command pays Django's start-up again.
SETUP = """
from django.core.management import call_command
for name in {names!r}:
    call_command("project", "create", name)
call_command("user", "create", {outsider!r}, "--password", {password!r})
"""


@pytest.fixture(scope="module")
def shop(bugnet: Server, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """The projects, each fed by a process of its own, all at once."""
    app = feed.write_shop_app(tmp_path_factory.mktemp("shop"))
    names = ["Shop Web", "Checkout", "Back Office", "Guestbook"]
    outsider = f"outsider{time.monotonic_ns()}@example.com"
    setup = SETUP.format(names=names, outsider=outsider, password=PASSWORD)
    result = bugnet.bugnet("shell", "-c", setup)
    assert result.returncode == 0, result.stdout + result.stderr
    dsns = [line for line in result.stdout.splitlines() if line.startswith("http")]
    web, checkout, bulk, hostile = (
        Project(name.lower().replace(" ", "-"), dsn) for name, dsn in zip(names, dsns)
    )
    runs = [
        feed.run_shop(app, web.dsn, "shop@1.0", *SHOP_PATHS, *MORE_PATHS),
        feed.run_shop(app, checkout.dsn, "shop@1.0", SHOP_PATHS[0]),
        feed.run_shop(app, bulk.dsn, "shop@1.0", *SHOP_PATHS[1:]),
    ]
    feed.send_event(bugnet, hostile.dsn, feed.hostile_event())
    for run in runs:
        feed.finish(run)
    for project, count, events in ((web, 4, 7), (checkout, 1, 1), (bulk, 3, 3), (hostile, 1, 1)):
        project.issues = feed.issues_of(bugnet, project.id, count, events)
    return Shop(app, web, checkout, bulk, hostile, outsider)


def admin_password(server: Server) -> str:
    """The password ``bugnet serve`` printed for ``admin@bugnet.local`` on its first run."""
    for line in server.output:
        if line.strip().startswith("password:"):
            return line.split("password:", 1)[1].split()[0]
    raise AssertionError("no admin password printed on the first run")


# -- The browser ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def admin_state(browser: Browser, bugnet: Server) -> Any:
    """The admin's signed-in cookies, for the tests that do not test signing in."""
    context = new_context(browser, bugnet.url)
    page = context.new_page()
    page.goto("/login/")
    sign_in(page, "admin@bugnet.local", admin_password(bugnet))
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def open_tab(browser: Browser, bugnet: Server, admin_state: Any) -> Iterator[Any]:
    """``open_tab(**context_options)``: a page in a fresh context, signed in as the admin
    unless ``storage_state=None``; at the end, nothing may have gone wrong in any of them."""
    contexts: list[tuple[BrowserContext, Watch]] = []

    def opener(**options: Any) -> Tab:
        options.setdefault("storage_state", admin_state)
        context = new_context(browser, bugnet.url, **options)
        watch = Watch()
        contexts.append((context, watch))
        page = context.new_page()
        watch.attach(page)
        return Tab(page, watch)

    yield opener
    problems = [p for _, watch in contexts for p in watch.problems]
    for context, _ in contexts:
        context.close()
    assert problems == []


# -- Signing in, and what needs it ------------------------------------------------------------


def test_a_page_needs_a_login_and_the_login_leads_back_to_it(open_tab, bugnet, shop):
    tab = open_tab(storage_state=None)
    page = tab.page
    target = shop.web.path + "?query=is:unresolved"
    response = page.goto(target)
    assert response is not None
    assert response.status == 200
    assert page.url.startswith(bugnet.url + "/login/?next=")
    pw_expect(page).to_have_title("Sign in · Bugnet")
    pw_expect(page.get_by_label("Email or username")).to_be_focused()  # autofocus
    page.get_by_label("Email or username").fill("admin@bugnet.local")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    pw_expect(page.get_by_role("alert")).to_contain_text("correct")
    sign_in(page, "admin@bugnet.local", admin_password(bugnet))
    assert unquote(page.url) == bugnet.url + target
    assert tab.violations() == []


def test_the_project_list_shows_each_project_with_its_open_issues(open_tab, shop):
    page = open_tab().page
    page.goto("/")
    pw_expect(page).to_have_title("Projects · Bugnet")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="Shop Web"))
    pw_expect(row.locator("td.num").last).to_have_text("4")
    pw_expect(row.locator("svg.spark")).to_have_count(1)
    pw_expect(page.get_by_role("link", name="Projects")).to_have_attribute("aria-current", "page")


def test_a_form_posted_without_its_csrf_token_is_refused(open_tab, shop):
    """Every form that changes something carries its CSRF token; the same POSTs from the
    browser with its cookies but without the token are turned away, and change nothing."""
    page = open_tab().page
    issue = shop.web.issue("ZeroDivisionError")
    for path in (shop.web.path, f"/issues/{issue}/"):
        page.goto(path)
        assert page.evaluate(POST_FORMS_WITHOUT_TOKEN) == [], path
    form = {"action": "resolve", "next": "/issues/"}
    answer = page.request.post(f"/issues/{issue}/status/", form=form)
    assert (answer.status, "CSRF" in answer.text()) == (403, True)
    answer = page.request.post("/issues/bulk/", form={**form, "issue": str(issue)})
    assert (answer.status, "CSRF" in answer.text()) == (403, True)
    page.reload()
    pw_expect(page.locator(".issue-status .status")).to_have_text("Unresolved")


POST_FORMS_WITHOUT_TOKEN = """() => [...document.querySelectorAll("form")]
  .filter((form) => form.method === "post" && !form.querySelector("input[name=csrfmiddlewaretoken]"))
  .map((form) => form.getAttribute("action"))"""


# -- The issue from a Flask error, from the list to its regression -----------------------------


def test_a_flask_error_is_an_issue_to_read_resolve_and_see_regress(open_tab, bugnet, shop):
    """Sign in, find the shop's crash, read where it broke (the in-app source line, a local
    variable, the log line before it, the request), resolve it; the same crash from the next
    release reopens it as a regression."""
    tab = open_tab(storage_state=None)
    page = tab.page
    page.goto("/")
    sign_in(page, "admin@bugnet.local", admin_password(bugnet))
    page.get_by_role("link", name="Checkout", exact=True).click()
    pw_expect(page).to_have_title("Issues · checkout · Bugnet")
    page.get_by_role("link", name="ZeroDivisionError: division by zero").click()
    pw_expect(page.get_by_role("heading", level=1)).to_have_text(
        "ZeroDivisionError: division by zero"
    )
    pw_expect(page).to_have_title(re.compile(r"ZeroDivisionError: division by zero · checkout"))

    frame = page.locator("li.frame.app").filter(has_text="checkout")
    pw_expect(frame.locator("summary")).to_contain_text("in app")
    pw_expect(frame.locator("tr.error-line")).to_have_text(
        re.compile(re.escape(feed.CHECKOUT_LINE))
    )
    discount = frame.locator("table.vars tr").filter(has=page.locator("th", has_text="discount"))
    pw_expect(discount.locator("td")).to_have_text("0")
    pw_expect(page.locator("ol.timeline")).to_contain_text("pricing cart 7")
    pw_expect(page.locator(".request-line")).to_contain_text(
        re.compile(r"GET\s+http://127\.0\.0\.1:\d+/checkout/7")
    )
    pw_expect(page.locator("ul.event-tags")).to_contain_text("tenantacme")

    page.get_by_role("button", name="Resolve", exact=True).click()
    pw_expect(page.locator(".issue-status .status")).to_have_text("Resolved")
    pw_expect(page.locator("ol.activity")).to_contain_text("resolved it")

    feed.finish(feed.run_shop(shop.app, shop.checkout.dsn, "shop@1.1", SHOP_PATHS[0]))
    issue = shop.checkout.issue("ZeroDivisionError")
    statuses = feed.wait_for(bugnet, "SELECT status FROM issues_issue WHERE id = %s", (issue,),
                             lambda rows: rows == [("unresolved",)])  # fmt: skip
    assert statuses == [("unresolved",)]
    page.reload()
    pw_expect(page.locator(".issue-status .status")).to_have_text("Unresolved")
    pw_expect(page.locator("ol.activity")).to_contain_text(
        re.compile(r"reopened it: a regression\s+in\s+shop@1\.1")
    )
    pw_expect(page.locator(".issue-stats")).to_contain_text("Events2")
    assert tab.violations() == []


# -- Searching and changing many issues at once ------------------------------------------------


def test_search_by_tag_from_the_box_and_from_a_tag_link(open_tab, shop):
    page = open_tab().page
    page.goto(shop.web.path)
    titles = page.locator("a.issue-title")
    pw_expect(titles).to_have_count(4)
    search = page.get_by_role("searchbox", name="Search issues")
    search.fill("tenant:globex")
    search.press("Enter")
    pw_expect(titles).to_have_text(["KeyError: 'Z-9'"])
    pw_expect(search).to_have_value("tenant:globex")
    pw_expect(page.locator(".issue-toolbar")).to_contain_text("1 issue")

    page.goto(f"/issues/{shop.web.issue('ZeroDivisionError')}/")
    page.locator("ul.event-tags").get_by_role("link", name="acme", exact=True).click()
    pw_expect(titles).to_have_count(2)
    pw_expect(titles.filter(has_text="ZeroDivisionError")).to_have_count(1)
    pw_expect(titles.filter(has_text="stock running low for TEA-1")).to_have_count(1)
    pw_expect(search).to_have_value(re.compile(r"tenant:\"?acme\"?"))


def test_bulk_ignore_hides_the_chosen_issues_from_the_unresolved_list(open_tab, bugnet, shop):
    page = open_tab().page
    page.goto(shop.bulk.path)
    rows = page.locator("table.issues tbody tr")
    pw_expect(rows).to_have_count(3)
    page.get_by_label("Select all on this page").check()
    keep = rows.filter(has_text="stock running low")
    pw_expect(keep.locator("input[name=issue]")).to_be_checked()
    keep.locator("input[name=issue]").uncheck()
    page.get_by_role("button", name="Ignore", exact=True).click()
    pw_expect(page.get_by_role("status")).to_contain_text("2 issues ignored.")
    pw_expect(page.locator("a.issue-title")).to_have_text(["stock running low for TEA-1"])
    page.locator(".issue-filters").get_by_role("link", name="Ignored").click()
    pw_expect(page.locator("a.issue-title")).to_have_count(2)
    pw_expect(page.locator(".status-ignored")).to_have_count(2)
    stored = bugnet.query("SELECT title, status FROM issues_issue WHERE project_id = %s",
                         (shop.bulk.id,))  # fmt: skip
    assert sorted(status for _, status in stored) == ["ignored", "ignored", "unresolved"]


# -- An attacker's event -------------------------------------------------------------------


def test_an_attackers_event_renders_as_text_everywhere(open_tab, shop):
    """Markup, event handlers and ``javascript:`` URLs in every field of an event: the list,
    the issue page and the raw JSON show them as text; nothing runs (no dialog, no console
    error, no refusal by the Content-Security-Policy, which would mean something tried), no
    link leads to script, and 5,000 characters without a space do not widen the page."""
    tab = open_tab()
    tab.watch.allow_confirm = False
    page = tab.page
    issue = shop.hostile.issue("Evil")
    for path in (shop.hostile.path, "/issues/?query=", f"/issues/{issue}/"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 200, path
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
        assert checks.injected(page) == [], path
        assert tab.violations() == [], path
        width = checks.overflow(page)
        assert width["excess"] <= 16, (path, width)
    assert page.title().startswith('GUESTBOOK-1: Evil"><imgsrc=xonerror=')
    text = page.locator("main").inner_text()
    missing = [m for m in SHOWN if f"{m} {feed.SCRIPT[:20]}" not in text]
    assert missing == []
    for marker in ("value", "context", "var", "crumb", "header", "context-value", "extra"):
        assert f"{marker} {feed.SCRIPT} {feed.IMG} {feed.SVG} {feed.JS_URL}" in text, marker
    pw_expect(page.locator("ol.frames").first).to_contain_text(feed.LONG[:100])
    raw = page.locator(".event-bar").get_by_role("link", name="Raw JSON")
    raw.click()
    page.wait_for_load_state("load")
    assert checks.injected(page) == []
    assert '"value <script>window.__pwned=' in page.locator("body").inner_text()
    assert tab.violations() == []
    assert tab.watch.problems == []


# Where the hostile strings show on the issue page, each after its marker (see hostile_event).
SHOWN = ["file", "abs", "module", "function", "context", "pre", "post", "varname", "var",
         "logger", "transaction", "server", "message", "value", "excmodule", "mechanism",
         "category", "crumb", "method", "url", "query", "header", "cookie", "body", "userid",
         "username", "os", "runtime", "context-value", "tagvalue", "extrakey", "extra", "sdk"]  # fmt: skip


# -- Who may see what ------------------------------------------------------------------------


def test_a_user_outside_the_projects_teams_gets_404s(open_tab, bugnet, shop):
    """Signed in, but in no team: a project's list, an issue, its event's JSON are not
    found, the list of all issues is empty, and a bulk change with a valid token changes
    nothing."""
    tab = open_tab(storage_state=None)
    page = tab.page
    page.goto("/login/")
    sign_in(page, shop.outsider, PASSWORD)
    issue = shop.web.issue("ZeroDivisionError")
    event_id = bugnet.query("SELECT event_id FROM issues_event WHERE issue_id = %s", (issue,))[0][0]
    for path in (shop.web.path, f"/issues/{issue}/", f"/issues/{issue}/events/{event_id}/json/",
                 f"/projects/default/{shop.web.slug}/settings/"):  # fmt: skip
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        assert "ZeroDivisionError" not in page.content()
    page.goto("/issues/")
    pw_expect(page.locator("a.issue-title")).to_have_count(0)
    pw_expect(page.locator(".empty")).to_contain_text("not a member")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    form = {"csrfmiddlewaretoken": token, "action": "resolve", "next": "/issues/"}
    answer = page.request.post(f"/issues/{issue}/status/", form=form)
    assert answer.status == 404
    answer = page.request.post("/issues/bulk/", form={**form, "issue": str(issue)})
    assert answer.ok
    assert bugnet.query("SELECT status FROM issues_issue WHERE id = %s", (issue,)) == [
        ("unresolved",)
    ]
    assert tab.violations() == []


# -- Keyboard and contrast ---------------------------------------------------------------------


def tab_through(page: Page, until: Any, limit: int = 80) -> list[dict[str, Any]]:
    """Press Tab from the top of the page until ``until(focused)``; what got the focus, in
    order."""
    order: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        now = checks.focused(page)
        assert now is not None, f"Tab left the page after {order}"
        order.append(now)
        if until(now):
            return order
    raise AssertionError(f"not reached in {limit} presses of Tab: {order}")


def focus_not_shown(order: list[dict[str, Any]]) -> list[str]:
    return [
        f"{f['tag']}.{f['classes']} {f['text'] or f['name']}" for f in order if not f["visible"]
    ]


def test_the_keyboard_reaches_search_issues_and_actions_with_visible_focus(open_tab, shop):
    """From the top of the list, Tab reaches the skip link first, then the search box, then
    the first issue; on the issue page, the Resolve button. Each stop shows its focus."""
    page = open_tab().page
    page.goto(shop.web.path)
    first_issue = page.locator("a.issue-title").first.inner_text()
    order = tab_through(page, lambda f: f["tag"] == "a" and f["text"] == first_issue)
    assert order[0]["text"] == "Skip to content"
    assert [f["id"] for f in order].count("issue-query") == 1
    assert focus_not_shown(order) == []
    page.keyboard.press("Enter")
    pw_expect(page).to_have_title(re.compile(re.escape(first_issue)))
    order = tab_through(page, lambda f: f["tag"] == "button" and f["text"] == "Resolve")
    assert focus_not_shown(order) == []


# Every page an admin reaches from the navigation, and the issue pages.
PAGES = ["/", "/issues/", "/account/", "/users/", "/users/teams/", "/projects/new/",
         "{web}", "{web}setup/", "{web}settings/", "{web}settings/alerts/new/",
         "{web}settings/alerts/{rule}/", "/issues/{issue}/"]  # fmt: skip


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_is_readable_and_whole_in_light_and_dark(open_tab, bugnet, shop, scheme):
    """Each page answers, runs nothing but its own scripts without an error, fits the window,
    has text of WCAG AA contrast, and a CSRF token in each of its POST forms."""
    tab = open_tab(color_scheme=scheme)
    page = tab.page
    found: dict[str, list[str]] = {}
    rule = bugnet.query("SELECT MIN(id) FROM alerts_alertrule WHERE project_id = %s",
                        (shop.web.id,))[0][0]  # fmt: skip
    for pattern in PAGES:
        path = pattern.format(web=shop.web.path, issue=shop.web.issue("ZeroDivisionError"),
                              rule=rule)  # fmt: skip
        response = page.goto(path)
        assert response is not None
        problems = [f"status {response.status}"] if response.status != 200 else []
        problems += checks.injected(page) + checks.low_contrast(page)
        problems += [
            f"form without a CSRF token: {a}" for a in page.evaluate(POST_FORMS_WITHOUT_TOKEN)
        ]
        width = checks.overflow(page)
        if width["excess"] > 16:
            problems.append(f"{width['excess']}px wider than the window: {width['culprits']}")
        problems += tab.violations()
        if problems:
            found[path] = problems
    assert found == {}


# -- The README's screenshots ---------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_the_issue_list_and_an_issue(open_tab, shop, scheme):
    page = open_tab(color_scheme=scheme).page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(shop.web.path)
    pw_expect(page.locator("a.issue-title")).to_have_count(4)
    page.screenshot(path=SCREENSHOTS / f"issue-list-{scheme}.png")
    page.goto(f"/issues/{shop.web.issue('ZeroDivisionError')}/")
    pw_expect(page.locator("li.frame.app tr.error-line")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / f"issue-detail-{scheme}.png", full_page=True)
