"""The admin pages over real HTTP: a project's setup (DSN, snippets, test event) and settings
(name, retention, keys, teams), users (create, invite, roles, teams) and who may do what."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Server, free_port
from web_client import WebClient
from web_site import Site, one

PASSWORD = "a-long-admin-password"
SNIPPET_IDS = [
    f"snippet-{framework}-{sdk}"
    for framework in ("flask", "django", "celery", "fastapi", "python")
    for sdk in ("bugnet", "sentry")
]


def eventually(check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def send_event(server: Server, project_id: int, public_key: str) -> int:
    """POST a one-event envelope with ``public_key``; the HTTP status."""
    event = {"event_id": uuid.uuid4().hex, "message": "hello from the admin tests", "level": "info"}
    payload = json.dumps(event).encode()
    body = b"\n".join(
        [b"{}", json.dumps({"type": "event", "length": len(payload)}).encode(), payload]
    )
    request = urllib.request.Request(
        f"{server.url}/api/{project_id}/envelope/", body, method="POST",
        headers={"X-Sentry-Auth": f"Sentry sentry_key={public_key}, sentry_version=7",
                 "Content-Type": "application/x-sentry-envelope"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


class AdminSite(Site):
    """The shared ``Site``, and the keys of a project."""

    def keys(self, project_id: int) -> list[tuple[Any, ...]]:
        return self.server.query(
            "SELECT id, public_key, label, active, rate_limit_per_minute FROM projects_projectkey "
            "WHERE project_id = %s ORDER BY id",
            (project_id,),
        )


@pytest.fixture(scope="module")
def site(server: Server) -> AdminSite:
    return AdminSite(server, PASSWORD)


@pytest.fixture(scope="module")
def admin(site: AdminSite) -> WebClient:
    return site.superuser(f"root-{site.tag}@example.com")


@pytest.fixture(scope="module")
def project(site: AdminSite, admin: WebClient) -> dict[str, Any]:
    return site.create_project(admin, f"Admin Shop {site.tag}", f"Shop team {site.tag}")


def test_a_new_project_opens_on_its_setup_page_with_the_dsn_and_snippets(server, project):
    page = project["page"]
    assert f"Created Admin Shop {project['slug'].split('-')[-1]}" in page.text
    dsn = server.bugnet("project", "dsn", project["slug"]).stdout.strip().splitlines()[-1]
    assert f'<code id="dsn" class="dsn">{dsn}</code>' in page.text
    assert '<button type="button" data-copy="dsn">Copy</button>' in page.text
    for snippet in SNIPPET_IDS:
        assert f'<code id="{snippet}">' in page.text
        assert f'data-copy="{snippet}"' in page.text
    for name in ("Flask", "Django", "Celery", "FastAPI", "Plain Python"):
        assert f"<h3>{name}</h3>" in page.text
    assert page.text.count("pip install bugnet") == 5
    assert page.text.count("pip install sentry-sdk") == 5
    assert page.text.count(f"bugnet.init(dsn=&quot;{dsn}&quot;)") == 5
    assert page.text.count(f"sentry_sdk.init(dsn=&quot;{dsn}&quot;)") == 5
    assert "from flask import Flask" in page.text
    assert "app = FastAPI()" in page.text
    assert " style=" not in page.text
    assert "<style" not in page.text
    assert "<script>" not in page.text


@pytest.mark.parametrize("sdk", ["bugnet", "sentry"])
def test_the_plain_python_snippet_reports_to_the_project(server, admin, project, sdk, tmp_path):
    """The snippet as the page shows it, run with the real SDK: its error becomes an issue."""
    page = admin.get(f"{project['base']}/setup/")
    code = re.search(rf'<code id="snippet-python-{sdk}">(.*?)</code>', page.text, re.S)
    assert code, page.text
    module = "bugnet" if sdk == "bugnet" else "sentry_sdk"
    script = (
        f"def do_something():\n    raise LookupError('snippet of {sdk} works')\n\n"
        f"{html.unescape(code.group(1))}\n{module}.flush(10)\n"
    )
    env = {**server.env, "BUGNET_SPOOL_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    title = f"LookupError: snippet of {sdk} works"
    found = eventually(
        lambda: server.query(
            "SELECT id FROM issues_issue WHERE project_id = %s AND title = %s",
            (project["id"], title),
        )
    )
    assert found, f"no issue {title!r}"


def test_send_a_test_event_makes_an_issue(server, admin, project):
    page = admin.post(f"{project['base']}/setup/test-event/")
    assert page.status == 200
    assert "Sent a test event" in page.text
    event_id = re.search(r"test_event=([0-9a-f]{32})", page.url).group(1)
    title = "TestEvent: This is a test event from Bugnet&#x27;s setup page"
    issue = eventually(
        lambda: server.query(
            "SELECT issue_id FROM issues_event WHERE project_id = %s AND event_id = %s",
            (project["id"], event_id),
        )
    )
    assert issue, "the test event was not digested"
    issue_id = issue[0][0]
    assert one(server, "SELECT title FROM issues_issue WHERE id = %s", issue_id) == title.replace(
        "&#x27;", "'"
    )
    again = admin.get(f"{project['base']}/setup/?test_event={event_id}")
    assert f'href="/issues/{issue_id}/"' in again.text
    # A second test event is the same error: the same issue, seen twice.
    admin.post(f"{project['base']}/setup/test-event/")
    assert eventually(
        lambda: one(server, "SELECT times_seen FROM issues_issue WHERE id = %s", issue_id) == 2
    )


def test_settings_rename_and_set_retention_with_validation(server, site, admin, project):
    url = f"{project['base']}/settings/"
    page = admin.post(url, {"name": "Renamed <shop>", "retention_days": 30,
                            "retention_max_events": 5000})  # fmt: skip
    assert page.status == 200
    assert page.url.endswith(url)
    assert "Saved the project" in page.text
    assert "Settings of Renamed &lt;shop&gt;" in page.text
    row = one(server, "SELECT name, slug, retention_days, retention_max_events FROM "
                      "projects_project WHERE id = %s", project["id"])  # fmt: skip
    assert row == ("Renamed <shop>", project["slug"], 30, 5000)
    refused = admin.post(url, {"name": "", "retention_days": 0, "retention_max_events": "x"})
    assert refused.status == 400
    assert "This field is required." in refused.text
    assert "Ensure this value is greater than or equal to 1." in refused.text
    assert "Enter a whole number." in refused.text
    assert "Settings of Renamed &lt;shop&gt;" in refused.text  # the saved name, not the typed one
    assert (
        one(server, "SELECT retention_days FROM projects_project WHERE id = %s", project["id"])
        == 30
    )


def test_settings_show_usage_with_what_the_sdks_dropped(server, site, admin):
    tag = f"{time.monotonic_ns():x}"
    project = site.create_project(admin, f"Usage {tag}", f"Usage team {tag}")
    url = f"{project['base']}/settings/"
    assert "Nothing received yet." in admin.get(url).text
    public_key = site.keys(project["id"])[0][1]
    assert send_event(server, project["id"], public_key) == 200
    report = json.dumps({"discarded_events": [
        {"reason": "before_send", "category": "error", "quantity": 4},
    ]}).encode()  # fmt: skip
    body = b"{}\n" + json.dumps({"type": "client_report"}).encode() + b"\n" + report
    request = urllib.request.Request(
        f"{server.url}/api/{project['id']}/envelope/", body, method="POST",
        headers={"X-Sentry-Auth": f"Sentry sentry_key={public_key}, sentry_version=7"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    page = admin.get(url).text
    rows = re.findall(r"<tr><td>(\w+)</td><td>([\w ]+)</td><td>(.*?)</td>"
                      r'<td class="number">(\d+)</td></tr>', page)  # fmt: skip
    assert rows == [
        ("error", "accepted", "", "1"),
        ("error", "dropped by the SDK", "<code>before_send</code>", "4"),
        ("internal", "accepted", "", "1"),
    ]


def test_keys_create_disable_rotate(server, site, admin, project):
    settings = f"{project['base']}/settings/"
    page = admin.post(settings + "keys/", {"label": "Deploy <ci>"})
    assert "Created the key" in page.text
    key_id, public_key, label, active, limit = site.keys(project["id"])[-1]
    assert (label, bool(active), limit) == ("Deploy <ci>", True, None)
    assert "Deploy &lt;ci&gt;" in page.text
    assert f'<code id="dsn-{key_id}" class="dsn">' in page.text
    assert send_event(server, project["id"], public_key) == 200
    page = admin.post(f"{settings}keys/{key_id}/disable/")
    assert "Disabled the key" in page.text
    assert not site.keys(project["id"])[-1][3]
    # Ingest caches keys for a few seconds; then the disabled key is refused.
    assert eventually(lambda: send_event(server, project["id"], public_key) == 403, 20)
    assert admin.post(f"{settings}keys/{key_id}/enable/").status == 200
    assert site.keys(project["id"])[-1][3]

    first_id, first_key = site.keys(project["id"])[0][:2]
    page = admin.post(f"{settings}keys/{first_id}/rotate/")
    assert "The old key keeps working until you disable it" in page.text
    keys = site.keys(project["id"])
    assert keys[-1][2] == "Default (rotated)"
    assert keys[-1][3]
    assert keys[0][:2] == (first_id, first_key)
    assert keys[0][3]
    assert send_event(server, project["id"], keys[-1][1]) == 200
    assert send_event(server, project["id"], first_key) == 200
    assert admin.post(f"{settings}keys/{first_id}/bogus/").status == 404
    assert admin.post(f"{settings}keys/999999999/disable/").status == 404


def test_a_rate_limited_key_gets_429_past_its_limit(server, site, admin, project):
    settings = f"{project['base']}/settings/"
    admin.post(settings + "keys/", {"label": "Limited"})
    key_id, public_key = site.keys(project["id"])[-1][:2]
    refused = admin.post(f"{settings}keys/{key_id}/rate-limit/", {"rate_limit_per_minute": -3})
    assert refused.status == 400
    assert "Ensure this value is greater than or equal to 1." in refused.text
    page = admin.post(f"{settings}keys/{key_id}/rate-limit/", {"rate_limit_per_minute": 2})
    assert "takes 2 events a minute" in page.text
    assert site.keys(project["id"])[-1][4] == 2
    if time.time() % 60 > 50:  # limits count per clock minute: stay within one
        time.sleep(61 - time.time() % 60)
    statuses = [send_event(server, project["id"], public_key) for _ in range(3)]
    assert statuses == [200, 200, 429]
    admin.post(f"{settings}keys/{key_id}/rate-limit/", {"rate_limit_per_minute": ""})
    assert site.keys(project["id"])[-1][4] is None


def test_a_member_may_look_but_not_change_and_never_sees_other_teams_projects(
    server, site, admin, project
):
    email = f"member-{site.tag}@example.com"
    made = site.create_user(admin, email, teams=project["team"])
    assert made.status == 200, made.text
    other = site.create_project(admin, f"Hidden {site.tag}", f"Hidden team {site.tag}")
    member = site.login(email)
    base, settings = project["base"], f"{project['base']}/settings/"
    assert member.get(f"{base}/setup/").status == 200
    page = member.get(settings)
    assert page.status == 200
    assert "Only owners and admins of Default change these settings." in page.text
    assert "Create a key" not in page.text
    key_id = site.keys(project["id"])[0][0]
    for path, data in [
        (settings, {"name": "Taken", "retention_days": 1, "retention_max_events": 1}),
        (settings + "keys/", {"label": "Mine"}),
        (f"{settings}keys/{key_id}/disable/", {}),
        (f"{settings}keys/{key_id}/rotate/", {}),
        (f"{settings}keys/{key_id}/rate-limit/", {"rate_limit_per_minute": 1}),
        (settings + "teams/", {"teams": project["team"]}),
    ]:
        assert member.post(path, data).status == 403, path
    assert member.get("/projects/new/").status == 403
    assert member.get("/users/").status == 403
    assert member.get("/users/teams/").status == 403
    for path in ("/setup/", "/settings/"):
        assert member.get(other["base"] + path).status == 404
    assert member.post(other["base"] + "/setup/test-event/").status == 404
    assert member.post(other["base"] + "/settings/keys/", {"label": "x"}).status == 404
    assert one(server, "SELECT name FROM projects_project WHERE id = %s", project["id"]) != "Taken"


def test_an_org_admin_manages_projects_and_their_members(server, site, admin, project):
    email = f"orgadmin-{site.tag}@example.com"
    site.create_user(admin, email, role="admin", teams=project["team"])
    org_admin = site.login(email)
    page = org_admin.post(f"{project['base']}/settings/",
                          {"name": "Admin's shop", "retention_days": 7,
                           "retention_max_events": 100})  # fmt: skip
    assert "Saved the project" in page.text
    created = site.create_project(org_admin, f"Admin made {site.tag}", f"Admin team {site.tag}")
    assert created["page"].status == 200
    users = org_admin.get("/users/")
    assert users.status == 200
    assert email in users.text
    # An admin hands out no ownership.
    refused = site.create_user(org_admin, f"owner-{site.tag}@example.com", role="owner")
    assert refused.status == 400
    assert (
        "Only an owner makes owners." in refused.text or "not one of the available" in refused.text
    )


def test_an_invited_user_sets_a_password_with_the_link_then_signs_in(server, site, admin):
    email = f"Invited-{site.tag}@Example.com"
    page = admin.post("/users/", {"email": email, "name": "In <vited>", "mode": "invite",
                                  "organization": site.org_id, "role": "member"})  # fmt: skip
    assert page.status == 200, page.text
    assert "Their set-password link" in page.text
    assert "In &lt;vited&gt;" in page.text
    link = re.search(r'<code id="once-secret" class="secret">(http[^<]+)</code>', page.text)
    assert link, page.text
    path = link.group(1).removeprefix(server.url)
    assert path.startswith("/login/activate/")
    assert "Their set-password link" not in admin.get(page.url.removeprefix(server.url)).text
    email = email.lower()
    assert one(server, "SELECT password FROM auth_user WHERE username = %s", email).startswith("!")

    visitor = WebClient(server.url)
    form = visitor.get(path)
    assert form.status == 200
    assert "Choose your password" in form.text
    assert form.headers["Referrer-Policy"] == "no-referrer"  # the token stays in this page
    mismatch = visitor.post(path, {"new_password1": "one-password-123",
                                   "new_password2": "another-password-123"})  # fmt: skip
    assert mismatch.status == 400
    assert "didn\u2019t match" in mismatch.text
    done = visitor.post(path, {"new_password1": "my-own-password-123",
                               "new_password2": "my-own-password-123"})  # fmt: skip
    assert done.url.endswith("/login/")
    assert "Your password is set" in done.text
    assert visitor.get(path).status == 404  # the link works once
    site.login(email, "my-own-password-123")


def test_a_generated_password_is_shown_once_and_works(server, site, admin):
    email = f"generated-{site.tag}@example.com"
    page = admin.post("/users/", {"email": email, "mode": "generate", "organization": "",
                                  "role": "member"})  # fmt: skip
    password = re.search(r'<code id="once-secret" class="secret">([^<]+)</code>', page.text)
    assert password, page.text
    site.login(email, password.group(1))
    again = admin.post("/users/", {"email": email.upper(), "mode": "generate", "role": "member"})
    assert again.status == 400
    assert "There is a user with this email already." in again.text
    weak = admin.post("/users/", {"email": f"weak-{site.tag}@example.com", "mode": "password",
                                  "password": "short", "role": "member"})  # fmt: skip
    assert weak.status == 400
    assert "This password is too short." in weak.text


def test_team_membership_decides_who_sees_a_project(server, site, admin, project):
    email = f"teamless-{site.tag}@example.com"
    site.create_user(admin, email)  # in the organization, in no team
    user_id = site.user_id(email)
    viewer = site.login(email)
    setup = f"{project['base']}/setup/"
    assert project["slug"] not in viewer.get("/").text
    assert viewer.get(setup).status == 404

    page = admin.post(f"/users/{user_id}/teams/", {"teams": project["team"]})
    assert "Saved" in page.text
    assert project["slug"] in viewer.get("/").text
    assert viewer.get(setup).status == 200

    admin.post(f"/users/{user_id}/teams/", {})
    assert project["slug"] not in viewer.get("/").text
    assert viewer.get(setup).status == 404

    # The same through the team's page.
    team = admin.get(f"/users/teams/{project['team']}/")
    assert team.status == 200
    members = re.findall(r'name="members" value="(\d+)"[^>]*checked', team.text)
    projects = re.findall(r'name="projects" value="(\d+)"[^>]*checked', team.text)
    assert str(project["id"]) in projects
    data = {"name": "Shop team", "members": [*members, user_id], "projects": projects}
    admin.post(f"/users/teams/{project['team']}/", data)
    assert viewer.get(setup).status == 200
    # Leaving the organization leaves its teams.
    admin.post(f"/users/{user_id}/roles/", {f"role_{site.org_id}": ""})
    assert viewer.get(setup).status == 404
    assert not server.query("SELECT 1 FROM projects_team_members WHERE user_id = %s", (user_id,))


def test_teams_are_created_on_the_teams_page(server, site, admin):
    page = admin.post("/users/teams/", {"organization": site.org_id, "name": f"Ops {site.tag}"})
    assert page.status == 200
    assert f"Team Ops {site.tag}" in page.text
    again = admin.post("/users/teams/", {"organization": site.org_id, "name": f"ops {site.tag}"})
    assert again.status == 400
    assert "already has a team" in again.text


def test_invalid_project_forms_re_render_with_their_errors(site, admin):
    page = admin.post("/projects/new/", {"name": "!!!", "organization": site.org_id})
    assert page.status == 400
    assert "Use letters or digits" in page.text
    assert "Choose a team" in page.text
    page = admin.post("/projects/new/", {"name": "<b>bold</b>", "organization": 999999,
                                         "new_team": "x"})  # fmt: skip
    assert page.status == 400
    assert 'value="&lt;b&gt;bold&lt;/b&gt;"' in page.text
    assert "Select a valid choice." in page.text


def test_event_data_never_escapes_into_markup_on_the_setup_page(site, admin):
    made = site.create_project(admin, f"<script>alert(1)</script> {site.tag}", f"x {site.tag}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in made["page"].text
    assert "<script>alert(1)" not in made["page"].text


def test_accounts_are_changed_only_by_who_may(server, site, admin, project):
    email = f"leaver-{site.tag}@example.com"
    site.create_user(admin, email, name="Leaver")
    user_id = site.user_id(email)
    page = admin.post(f"/users/{user_id}/account/", {"name": "Left <now>"})
    assert "Saved" in page.text
    assert "Left &lt;now&gt;" in page.text
    refused = WebClient(server.url).post("/login/", {"username": email, "password": PASSWORD})
    assert "Sign in to Bugnet" in refused.text  # inactive: no sign-in
    own = admin.post(f"/users/{site.user_id(f'root-{site.tag}@example.com')}/account/", {})
    assert own.status == 400
    assert "You cannot deactivate yourself." in own.text

    org_admin_email = f"second-admin-{site.tag}@example.com"
    site.create_user(admin, org_admin_email, role="admin")
    org_admin = site.login(org_admin_email)
    owner_id = site.user_id("admin@bugnet.local")  # the first run's superuser, the owner
    assert org_admin.get(f"/users/{owner_id}/").status == 200
    assert org_admin.post(f"/users/{owner_id}/link/").status == 403
    assert org_admin.post(f"/users/{owner_id}/account/", {"is_active": "on"}).status == 403
    demoted = org_admin.post(f"/users/{owner_id}/roles/", {f"role_{site.org_id}": "member"})
    assert demoted.status == 400
    assert "Only an owner makes or unmakes owners." in demoted.text
    assert one(server, "SELECT role FROM projects_organizationmember WHERE user_id = %s",
               owner_id) == "owner"  # fmt: skip
    # An admin may reset a plain member's password with a new link.
    member_id = site.user_id(email)
    admin.post(f"/users/{member_id}/account/", {"name": "Back", "is_active": "on"})
    link = org_admin.post(f"/users/{member_id}/link/")
    assert "Their set-password link" in link.text


def test_a_set_password_link_is_emailed_when_email_is_set_up(server, site, admin):
    """With ``BUGNET_EMAIL_URL`` set, the invite's link goes out by email too (sent here from a
    ``bugnet shell`` with that setting, to a local SMTP server)."""
    controller_module = pytest.importorskip("aiosmtpd.controller")
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    email = f"mailed-{site.tag}@example.com"
    site.create_user(admin, email, mode="invite")
    port = free_port()
    controller = controller_module.Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        script = (
            "from django.contrib.auth.models import User\n"
            "from bugnet_server.web import invites\n"
            f"user = User.objects.get(username={email!r})\n"
            "link = invites.set_password_link(user)\n"
            "print(invites.email_enabled(), invites.email_link(user, link, user))\n"
            "print(link)\n"
        )
        env = {**server.env, "BUGNET_EMAIL_URL": f"smtp://127.0.0.1:{port}"}
        run = subprocess.run([sys.executable, "-m", "bugnet_server.cli", "shell", "-c", script],
                             env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    finally:
        controller.stop()
    assert run.returncode == 0, run.stderr
    status, link = run.stdout.strip().splitlines()[-2:]
    assert status == "True None"
    assert len(received) == 1
    assert received[0].rcpt_tos == [email]
    message = received[0].content.decode()
    assert "Subject: Your Bugnet account" in message
    assert link in message
    assert WebClient(server.url).get(link.removeprefix(server.url)).status == 200
