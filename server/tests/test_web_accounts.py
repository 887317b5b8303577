"""The web UI's front door over real HTTP: every page needs a login, sign in and out, change
your password, the security headers, and a project list that shows a member only their teams'
projects."""

from __future__ import annotations

import time

import pytest
from conftest import Server
from web_client import WebClient
from web_site import join_team


@pytest.fixture(scope="module")
def people(server: Server) -> dict[str, str]:
    """A member of one team (with one project), and a user in no team."""
    tag = str(time.monotonic_ns())
    member, outsider = f"member{tag}@example.com", f"outsider{tag}@example.com"
    for email in (member, outsider):
        assert (
            server.bugnet("user", "create", email, "--password", "a-long-password").returncode == 0
        )
    for name in (f"Visible {tag}", f"Hidden {tag}"):
        assert server.bugnet("project", "create", name).returncode == 0
    join_team(server, member, f"team-{tag}", [f"visible-{tag}"])
    return {"member": member, "outsider": outsider, "visible": f"visible-{tag}",
            "hidden": f"hidden-{tag}"}  # fmt: skip


def test_pages_need_a_login_and_send_you_back_after_it(server: Server) -> None:
    client = WebClient(server.url, follow_redirects=False)
    for path in ("/", "/issues/", "/account/", "/projects/default/anything/"):
        page = client.get(path)
        assert page.status == 302, path
        assert page.headers["Location"].startswith("/login/?next=" + path[:2])
    login = client.get("/login/")
    assert login.status == 200
    assert "<title>Sign in · Bugnet</title>" in login.text


def test_security_headers_and_cookie_flags(server: Server) -> None:
    client = WebClient(server.url)
    page = client.get("/login/")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    client.login("admin@bugnet.local", admin_password(server))
    session = next(c for c in client.cookies if c.name == "sessionid")
    assert session.has_nonstandard_attr("HttpOnly")
    assert session.get_nonstandard_attr("SameSite") == "Lax"
    assert not session.secure  # plain http here; BUGNET_BASE_URL https:// makes it Secure


def admin_password(server: Server) -> str:
    for line in server.output:
        if line.strip().startswith("password:"):
            return line.split("password:", 1)[1].split()[0]
    raise AssertionError("no admin password printed on the first run")


def test_a_wrong_password_is_refused_and_a_right_one_signs_in_and_out(
    server: Server, people: dict[str, str]
) -> None:
    client = WebClient(server.url)
    page = client.post("/login/", {"username": people["member"], "password": "wrong"})
    assert "Sign in to Bugnet" in page.text
    assert "Please enter a correct" in page.text
    page = client.post("/login/", {"username": people["member"], "password": "a-long-password"})
    assert page.url.endswith("/")
    assert "<title>Projects · Bugnet</title>" in page.text
    page = client.post("/logout/")
    assert "Sign in to Bugnet" in page.text
    assert WebClient(server.url, follow_redirects=False).get("/").status == 302


def test_a_login_form_without_its_csrf_token_is_refused(server: Server) -> None:
    client = WebClient(server.url)
    client.get("/login/")
    page = client.request("POST", "/login/", {"username": "x", "password": "y"})
    assert page.status == 403


def test_a_member_sees_their_teams_projects_only(server: Server, people: dict[str, str]) -> None:
    member = WebClient(server.url)
    member.login(people["member"], "a-long-password")
    projects = member.get("/").text
    assert f"default/{people['visible']}" in projects
    assert f"default/{people['hidden']}" not in projects
    assert 'aria-label="Events per hour, last 24 hours' in projects
    outsider = WebClient(server.url)
    outsider.login(people["outsider"], "a-long-password")
    assert "not a member of any project" in outsider.get("/").text


def test_change_your_password(server: Server) -> None:
    email = f"changer{time.monotonic_ns()}@example.com"
    assert server.bugnet("user", "create", email, "--password", "first-password-1").returncode == 0
    client = WebClient(server.url)
    client.login(email, "first-password-1")
    form = {
        "old_password": "wrong",
        "new_password1": "second-pass-2",
        "new_password2": "second-pass-2",
    }
    assert "error" in client.post("/account/", form).text
    form["old_password"] = "first-password-1"
    page = client.post("/account/", form)
    assert "Your password was changed." in page.text
    assert "<title>Projects" not in page.text  # still signed in, on the account page
    again = WebClient(server.url)
    again.login(email, "second-pass-2")
