"""The issue lists of the web UI over real HTTP: what a row shows, search with the API's query
language, sorting, paging, bulk resolve / ignore / unresolve with history, who may see and
change what, escaping of event data, and CSRF on the bulk form."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from html import unescape
from typing import Any

import pytest
from conftest import Server
from web_client import WebClient
from web_site import join_team

PASSWORD = "a-long-password"
XSS_TITLE = "<script>alert(1)</script>"
XSS_MODULE = '"><img src=x onerror=alert(1)>'
XSS_ENVIRONMENT = '"><svg onload=alert(3)>'


def last_line(server: Server, *args: str) -> str:
    result = server.bugnet(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def send(dsn: str, event: dict[str, Any]) -> None:
    """Post one event to the project's store endpoint, as an SDK would."""
    parts = urllib.parse.urlsplit(dsn)
    project_id = parts.path.rsplit("/", 1)[1]
    body = json.dumps({"event_id": uuid.uuid4().hex, "platform": "python", **event}).encode()
    request = urllib.request.Request(
        f"{parts.scheme}://{parts.hostname}:{parts.port}/api/{project_id}/store/", body,
        {"X-Sentry-Auth": f"Sentry sentry_key={parts.username}, sentry_version=7",
         "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def error(kind: str, value: str, module: str, ago: float, **extra: Any) -> dict[str, Any]:
    """An error event ``ago`` seconds old, its culprit ``<module> in handle``."""
    frame = {"module": module, "function": "handle", "filename": "app.py", "lineno": 1}
    exception = {"type": kind, "value": value, "stacktrace": {"frames": [frame]}}
    return {"timestamp": time.time() - ago, "exception": {"values": [exception]}, **extra}


def wait_digested(server: Server, slug: str, events: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = server.query(
            "SELECT COALESCE(SUM(i.times_seen), 0) FROM issues_issue i "
            "JOIN projects_project p ON p.id = i.project_id WHERE p.slug = %s",
            (slug,),
        )
        if rows[0][0] >= events:
            return
        time.sleep(0.1)
    raise AssertionError(f"{slug}: the digest did not count {events} events in time")


@pytest.fixture(scope="module")
def shop(server: Server) -> dict[str, Any]:
    """A project seen by a member (through a team) and not by an outsider, with issues whose
    last seen, first seen and counts order them differently; one of them hostile."""
    tag = uuid.uuid4().hex[:10]
    slug, paged = f"listing-{tag}", f"paging-{tag}"
    member, outsider = f"lister{tag}@example.com", f"stranger{tag}@example.com"
    for email in (member, outsider):
        last_line(server, "user", "create", email, "--password", PASSWORD)
    dsn = last_line(server, "project", "create", f"Listing {tag}")
    paged_dsn = last_line(server, "project", "create", f"Paging {tag}")
    join_team(server, member, f"listers-{tag}", [slug, paged])
    sort = {"tags": {"suite": "sort"}}
    for n, ago in enumerate((3 * 3600, 3000, 600)):  # first seen 3 h ago, last seen 10 min ago
        send(dsn, error("CheckoutError", "cart is empty", "shop.cart", ago, environment="prod", release="list@1.0", user={"id": f"u{n}"},
                        tags={"suite": "sort", "browser": "Firefox"}))  # fmt: skip
    send(dsn, error("TimeoutError", "db slow", "shop.db", 3600, **sort,
                    environment="staging", release="list@2.0"))  # fmt: skip
    for ago in (3 * 86400, 2 * 86400):
        send(dsn, error("HostileError", XSS_TITLE, XSS_MODULE, ago, **sort,
                        environment=XSS_ENVIRONMENT))  # fmt: skip
    for n in range(2):
        send(dsn, error(f"BulkError{n}", "to change", "shop.bulk", 60, tags={"suite": "bulk"}))
    for n in range(27):
        send(paged_dsn, error(f"PageError{n}", "one of many", "shop.pages", 7200 - n * 60))
    wait_digested(server, slug, 3 + 1 + 2 + 2)
    wait_digested(server, paged, 27)
    ids = dict(
        server.query(
            "SELECT i.title, i.id FROM issues_issue i JOIN projects_project p "
            "ON p.id = i.project_id WHERE p.slug = %s",
            (slug,),
        )
    )
    return {"slug": slug, "paged": paged, "member": member, "outsider": outsider, "ids": ids,
            "path": f"/projects/default/{slug}/"}  # fmt: skip


def signed_in(server: Server, email: str, follow_redirects: bool = True) -> WebClient:
    client = WebClient(server.url, follow_redirects=follow_redirects)
    client.login(email, PASSWORD)
    return client


def titles(html: str) -> list[str]:
    return [unescape(t) for t in re.findall(r'class="issue-title" href="[^"]+">([^<]*)</a>', html)]


def link(html: str, rel: str) -> str:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    assert found, f"no {rel} link"
    return unescape(found.group(1))


def params(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def status_of(server: Server, issue_id: int) -> str:
    return str(server.query("SELECT status FROM issues_issue WHERE id = %s", (issue_id,))[0][0])


def test_a_row_shows_title_culprit_short_id_counts_and_times(server, shop):
    page = signed_in(server, shop["member"]).get(shop["path"] + "?query=CheckoutError")
    assert page.status == 200
    assert f"<title>Issues · {shop['slug']} · Bugnet</title>" in page.text
    assert titles(page.text) == ["CheckoutError: cart is empty"]
    issue_id = shop["ids"]["CheckoutError: cart is empty"]
    assert f'href="/issues/{issue_id}/"' in page.text
    assert "shop.cart in handle" in page.text
    short_id = server.query("SELECT short_id FROM issues_issue WHERE id = %s", (issue_id,))[0][0]
    assert f">{shop['slug'].upper().replace('-', '')[:12]}-{short_id:X}</span>" in page.text
    assert re.search(r'<td class="num">3</td>\s*<td class="num">3</td>', page.text)  # events, users
    assert '<span class="level level-error">error</span>' in page.text
    when = r'<time datetime="[0-9T:.+-]+" title="[0-9 :-]+ UTC">{}</time>'
    assert re.search(when.format("1[0-9] min ago"), page.text)  # last seen
    assert re.search(when.format("3 h ago"), page.text)  # first seen
    assert re.search(r'aria-label="Events per hour, last 24 hours \(peak [12]\)"', page.text)
    daily = signed_in(server, shop["member"]).get(shop["path"] + "?query=CheckoutError&stats=14d")
    assert re.search(r'aria-label="Events per day, last 14 days \(peak [23]\)"', daily.text)


def test_the_default_search_is_unresolved_and_shown_in_the_box(server, shop):
    page = signed_in(server, shop["member"]).get(shop["path"])
    assert 'name="query" value="is:unresolved"' in page.text
    assert "PageError0: one of many" not in page.text  # another project
    assert {"CheckoutError: cart is empty", "TimeoutError: db slow"} <= set(titles(page.text))


def test_search_by_tag_release_environment_and_free_text(server, shop):
    client = signed_in(server, shop["member"])

    def found(query: str) -> list[str]:
        page = client.get(shop["path"] + "?" + urllib.parse.urlencode({"query": query}))
        assert page.status == 200, page.text
        return titles(page.text)

    assert found("browser:Firefox") == ["CheckoutError: cart is empty"]
    assert found("release:list@2.0") == ["TimeoutError: db slow"]
    assert found("is:unresolved environment:staging") == ["TimeoutError: db slow"]
    assert found("db slow") == ["TimeoutError: db slow"]
    assert found('"cart is" level:error') == ["CheckoutError: cart is empty"]
    assert found("level:warning") == []


def test_filter_menus_rewrite_the_query(server, shop):
    page = signed_in(server, shop["member"]).get(shop["path"] + "?query=is:unresolved+db")
    path = shop["path"]
    assert f'href="{path}?query=is%3Aunresolved+db+environment%3Astaging"' in page.text
    assert f'href="{path}?query=is%3Aunresolved+db+release%3Alist%402.0"' in page.text
    assert f'href="{path}?query=is%3Aunresolved+db+level%3Afatal"' in page.text
    assert f'href="{path}?query=is%3Aresolved+db"' in page.text  # status tabs keep the rest
    assert f'href="{path}?query=db"' in page.text  # "All"


def test_a_bad_query_says_why_instead_of_failing(server, shop):
    client = signed_in(server, shop["member"])
    page = client.get(shop["path"] + "?query=is:bogus")
    assert page.status == 400
    assert "is:bogus is not one of" in page.text
    assert 'role="alert"' in page.text
    page = client.get("/issues/?query=%22unclosed")
    assert page.status == 400
    assert "cannot parse the query" in page.text


def test_sort_by_last_seen_first_seen_and_frequency(server, shop):
    client = signed_in(server, shop["member"])
    checkout, timeout, hostile = (
        "CheckoutError: cart is empty",
        "TimeoutError: db slow",
        (f"HostileError: {XSS_TITLE}"),
    )
    base = shop["path"] + "?query=suite:sort"
    assert titles(client.get(base).text) == [checkout, timeout, hostile]
    assert titles(client.get(base + "&sort=date").text) == [checkout, timeout, hostile]
    assert titles(client.get(base + "&sort=new").text) == [timeout, checkout, hostile]
    assert titles(client.get(base + "&sort=freq").text) == [checkout, hostile, timeout]


def test_paging_keeps_the_query_and_the_sort(server, shop):
    client = signed_in(server, shop["member"])
    first = client.get(f"/projects/default/{shop['paged']}/?query=PageError&sort=new&stats=14d")
    first_titles = titles(first.text)
    assert len(first_titles) == 25
    assert first_titles[0] == "PageError26: one of many"  # the newest first
    assert 'rel="prev"' not in first.text
    older = link(first.text, "next")
    assert params(older) == {"query": "PageError", "sort": "new", "stats": "14d",
                             "after": params(older)["after"]}  # fmt: skip
    second = client.get(older)
    assert titles(second.text) == ["PageError1: one of many", "PageError0: one of many"]
    assert 'rel="next"' not in second.text
    newer = link(second.text, "prev")
    assert params(newer) == {"query": "PageError", "sort": "new", "stats": "14d",
                             "before": params(newer)["before"]}  # fmt: skip
    assert titles(client.get(newer).text) == first_titles


def test_all_issues_lists_visible_projects_only_with_their_names(server, shop):
    page = signed_in(server, shop["member"]).get("/issues/?query=TimeoutError")
    assert "<title>Issues · all projects · Bugnet</title>" in page.text
    assert "TimeoutError: db slow" in titles(page.text)
    assert f'<a href="{shop["path"]}">Listing ' in page.text
    stranger = signed_in(server, shop["outsider"]).get("/issues/?query=")
    assert stranger.status == 200
    assert titles(stranger.text) == []
    assert "not a member of any project" in stranger.text


def test_a_project_without_issues_points_to_its_setup(server):
    tag = uuid.uuid4().hex[:10]
    last_line(server, "project", "create", f"Quiet {tag}")
    admin = admin_client(server)
    page = admin.get(f"/projects/default/quiet-{tag}/")
    assert page.status == 200
    assert "No issues yet" in page.text
    assert f'href="/projects/default/quiet-{tag}/setup/"' in page.text


def test_bulk_resolve_ignore_unresolve_change_status_and_record_who(server, shop):
    client = signed_in(server, shop["member"])
    user_id = server.query("SELECT id FROM auth_user WHERE email = %s", (shop["member"],))[0][0]
    ids = [shop["ids"][f"BulkError{n}: to change"] for n in range(2)]
    back = shop["path"] + "?query=suite:bulk"
    for action, status, said in (("resolve", "resolved", "2 issues resolved."),
                                 ("ignore", "ignored", "2 issues ignored."),
                                 ("unresolve", "unresolved", "2 issues unresolved.")):  # fmt: skip
        page = client.post("/issues/bulk/", {"issue": ids, "action": action, "next": back})
        assert page.status == 200
        assert page.url.endswith(back)
        assert said in page.text
        assert [status_of(server, pk) for pk in ids] == [status, status]
    for pk in ids:
        history = server.query(
            "SELECT kind, user_id FROM issues_issueactivity WHERE issue_id = %s ORDER BY id", (pk,)
        )
        assert history[-3:] == [("resolved", user_id), ("ignored", user_id),
                                ("unresolved", user_id)]  # fmt: skip
    page = client.post("/issues/bulk/", {"issue": ids, "action": "unresolve", "next": back})
    assert "No issues changed" in page.text


def test_bulk_goes_back_to_the_list_but_never_off_site(server, shop):
    client = signed_in(server, shop["member"], follow_redirects=False)
    pk = shop["ids"]["BulkError0: to change"]
    page = client.post("/issues/bulk/", {"issue": pk, "action": "unresolve",
                                         "next": "https://evil.example/"})  # fmt: skip
    assert page.status == 302
    assert page.headers["Location"] == "/issues/"
    page = client.post("/issues/bulk/", {"issue": pk, "action": "explode", "next": "/"})
    assert page.status == 400
    assert client.get("/issues/bulk/").status == 405


def test_an_outsider_gets_404_and_cannot_change_others_issues(server, shop):
    stranger = signed_in(server, shop["outsider"])
    assert stranger.get(shop["path"]).status == 404
    assert stranger.get(shop["path"] + "?query=is:bogus").status == 404
    pk = shop["ids"]["CheckoutError: cart is empty"]
    before = server.query("SELECT COUNT(*) FROM issues_issueactivity WHERE issue_id = %s", (pk,))
    page = stranger.post("/issues/bulk/", {"issue": pk, "action": "ignore", "next": "/issues/"})
    assert page.status == 200  # skipped without a word: nothing says the issue exists
    assert "issue ignored" not in page.text
    assert status_of(server, pk) == "unresolved"
    after = server.query("SELECT COUNT(*) FROM issues_issueactivity WHERE issue_id = %s", (pk,))
    assert after == before


def test_event_data_is_escaped(server, shop):
    page = signed_in(server, shop["member"]).get(shop["path"] + "?query=HostileError")
    assert titles(page.text) == [f"HostileError: {XSS_TITLE}"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>alert" not in page.text
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt; in handle" in page.text
    assert "<img src=x" not in page.text
    assert "<svg onload" not in page.text  # the environment menu
    assert "&quot;&gt;&lt;svg onload=alert(3)&gt;" in page.text


def test_bulk_without_csrf_token_is_refused(server, shop):
    client = signed_in(server, shop["member"])
    pk = shop["ids"]["TimeoutError: db slow"]
    page = client.request("POST", "/issues/bulk/", {"issue": pk, "action": "resolve"})
    assert page.status == 403
    assert status_of(server, pk) == "unresolved"


def admin_client(server: Server) -> WebClient:
    password = next(
        line.split("password:", 1)[1].split()[0]
        for line in server.output
        if line.strip().startswith("password:")
    )
    client = WebClient(server.url)
    client.login("admin@bugnet.local", password)
    return client


@pytest.mark.parametrize(
    "cursor", ["after=%C2%B2.1", "before=1.%C2%B2", "after=1.99999999999999999999999", "before=x"]
)
def test_a_malformed_page_cursor_shows_the_first_page(server, shop, cursor):
    client = signed_in(server, shop["member"])
    page = client.get(f"/projects/default/{shop['paged']}/?query=PageError&{cursor}")
    assert page.status == 200
    assert titles(page.text)[0] == "PageError26: one of many"
