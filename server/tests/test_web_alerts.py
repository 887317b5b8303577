"""The alert pages over real HTTP: a project's rules on its settings page, a rule's page (edit,
channels, test alerts to a real local receiver, deliveries with their attempts), a new rule,
who may do what, a user's alert emails, and an issue's alerts in its activity."""

from __future__ import annotations

import html
import json
import re
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alert_receivers import HttpSink, hmac_ok, wait_for
from conftest import Server, free_port
from web_client import Page, WebClient
from web_site import Site, one

PASSWORD = "a-long-alerts-password"
HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror=alert(1)>'


@pytest.fixture
def receiver() -> Iterator[HttpSink]:
    """A webhook receiver on a free local port, at a path that markup must escape."""
    sink = HttpSink(free_port(), path="/hooks/bugnet?from=<tests>")
    sink.start()
    yield sink
    sink.stop()


class AlertSite(Site):
    """The shared ``Site``, and the alert rules, channels and deliveries in the database."""

    def create_project(self, admin: WebClient, name: str, team: str = "") -> dict[str, Any]:
        """As ``Site.create_project``, and the path of its ``alerts`` pages."""
        project = super().create_project(admin, name, team)
        return {**project, "alerts": f"{project['settings']}/alerts"}

    def create_user(self, admin: WebClient, email: str, **fields: Any) -> Page:
        page = super().create_user(admin, email, **fields)
        assert page.status == 200, page.text
        return page

    def rules(self, project: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self.server.query(
            "SELECT id, name, active, on_new, on_regression, on_unignored, spike_count, "
            "spike_minutes, min_level, environment, interval_minutes FROM alerts_alertrule "
            "WHERE project_id = %s ORDER BY id",
            (project["id"],),
        )

    def channels(self, rule_id: int) -> list[tuple[Any, ...]]:
        return self.server.query(
            "SELECT id, kind, addresses, url, secret FROM alerts_alertchannel WHERE rule_id = %s "
            "ORDER BY id",
            (rule_id,),
        )

    def deliveries(self, rule_id: int) -> list[tuple[Any, ...]]:
        return self.server.query(
            "SELECT d.id, a.action, d.kind, d.status, d.attempts, d.last_error, a.issue_id "
            "FROM alerts_delivery d JOIN alerts_alert a ON a.id = d.alert_id "
            "WHERE a.rule_id = %s ORDER BY d.id",
            (rule_id,),
        )

    def attempts(self, delivery_id: int) -> list[tuple[Any, ...]]:
        return self.server.query(
            "SELECT ok, detail FROM alerts_deliveryattempt WHERE delivery_id = %s ORDER BY id",
            (delivery_id,),
        )


@pytest.fixture(scope="module")
def site(server: Server) -> AlertSite:
    return AlertSite(server, PASSWORD)


@pytest.fixture(scope="module")
def admin(site: AlertSite) -> WebClient:
    return site.superuser(f"alerts-root-{site.tag}@example.com")


@pytest.fixture(scope="module")
def project(site: AlertSite, admin: WebClient) -> dict[str, Any]:
    return site.create_project(admin, f"Alert Shop {site.tag}")


@pytest.fixture(scope="module")
def member(site: AlertSite, admin: WebClient, project: dict[str, Any]) -> WebClient:
    """A plain member of the project's team."""
    email = f"alerts-member-{site.tag}@example.com"
    site.create_user(admin, email, teams=project["team"])
    return site.login(email)


def new_rule(admin: WebClient, project: dict[str, Any], **fields: Any) -> Page:
    data = {"name": "Rule", "active": "on", "on_new": "on", "interval_minutes": 30,
            "channel-kind": "", **fields}  # fmt: skip
    return admin.post(f"{project['alerts']}/new/", data)


def rule_id_of(page: Page) -> int:
    match = re.search(r"/settings/alerts/(\d+)/", page.url)
    assert match, page.url
    return int(match.group(1))


def messages(page: Page) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<li class="[a-z]+">(.*?)</li>', page.text)]


# -- The settings page -------------------------------------------------------------------------


def test_a_new_projects_default_rule_is_listed_with_a_note_that_email_is_off(site, admin, project):
    page = admin.get(f"{project['settings']}/")
    assert page.status == 200
    section = page.text[page.text.index('id="alerts"') :]
    (rule_id, name, *_) = site.rules(project)[0]
    assert name == "New issues and regressions"
    assert f'href="{project["alerts"]}/{rule_id}/">New issues and regressions</a>' in section
    assert "new issue, regression; at most once per issue every 30 min" in section
    assert "Email → the project&#x27;s members" in section
    assert "None yet." in section
    assert "Email alerts are not sent: set BUGNET_EMAIL_URL" in section
    assert f'href="{project["alerts"]}/new/">Add a rule</a>' in section


# -- Rules: create, edit, delete, validation ---------------------------------------------------


def test_a_rule_is_created_with_its_first_channel_edited_and_deleted(server, site, admin, project):
    page = new_rule(admin, project, name=f"Spikes {HOSTILE}", on_new="", on_unignored="on",
                    spike_count=5, spike_minutes=10, min_level="warning",
                    environment="production", interval_minutes=15, **{
                        "channel-kind": "slack", "channel-url": "https://hooks.example.com/T1/B2"})  # fmt: skip
    assert page.status == 200, page.text
    assert "Added the rule" in page.text
    rule_id = rule_id_of(page)
    row = site.rules(project)[-1]
    assert row == (rule_id, f"Spikes {HOSTILE}", True, False, False, True, 5, 10, "warning",
                   "production", 15)  # fmt: skip
    ((_, kind, addresses, url, _),) = site.channels(rule_id)
    assert (kind, addresses, url) == ("slack", "", "https://hooks.example.com/T1/B2")
    assert HOSTILE not in page.text
    assert html.escape(HOSTILE) in page.text
    assert ("When: ignored issue back, more than 5 events in 10 min; level warning and above; "
            "environment production; at most once per issue every 15 min.") in page.text  # fmt: skip
    assert "https://hooks.example.com/T1/B2" in page.text  # the admin sees the whole URL

    page = admin.post(f"{project['alerts']}/{rule_id}/", {
        "name": "Regressions", "on_regression": "on", "spike_count": "", "spike_minutes": "",
        "min_level": "", "environment": "", "interval_minutes": 60})  # fmt: skip
    assert page.status == 200
    assert "Saved the rule “Regressions”." in messages(page)
    assert site.rules(project)[-1] == (rule_id, "Regressions", False, False, True, False, None,
                                       None, "", "", 60)  # fmt: skip
    assert '<span class="state state-off">Off</span>' in page.text
    settings = admin.get(f"{project['settings']}/")
    assert "Regressions</a>" in settings.text
    assert "Slack → https://hooks.example.com/…" in settings.text

    page = admin.post(f"{project['alerts']}/{rule_id}/delete/")
    assert page.status == 200
    assert page.url.endswith(f"{project['settings']}/#alerts")
    assert "Deleted the rule “Regressions”." in messages(page)
    assert [r for r in site.rules(project) if r[0] == rule_id] == []
    assert site.channels(rule_id) == []
    assert admin.get(f"{project['alerts']}/{rule_id}/").status == 404


def test_a_rule_without_a_channel_says_it_sends_nothing(site, admin, project):
    page = new_rule(admin, project, name="Quiet")
    assert page.status == 200
    assert "No channel: this rule sends nothing." in page.text
    assert site.channels(rule_id_of(page)) == []


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"on_new": ""}, "Choose at least one trigger"),
        ({"spike_count": 5}, "A spike takes both numbers"),
        ({"spike_minutes": 5}, "A spike takes both numbers"),
        ({"spike_count": 0, "spike_minutes": 10}, "greater than or equal to 1"),
        ({"interval_minutes": 0}, "greater than or equal to 1"),
        ({"name": ""}, "This field is required."),
        ({"min_level": "catastrophic"}, "Select a valid choice."),
        ({"channel-kind": "webhook", "channel-url": "javascript:alert(1)"},
         "Enter an http:// or https:// URL."),
        ({"channel-kind": "discord", "channel-url": "ftp://example.com/hook"},
         "Enter an http:// or https:// URL."),
        ({"channel-kind": "webhook", "channel-url": ""}, "A webhook needs its URL."),
        ({"channel-kind": "email", "channel-addresses": "ok@example.com\n<b>not-an-address</b>"},
         "Not an email address: &lt;b&gt;not-an-address&lt;/b&gt;"),
        ({"channel-kind": "pager"}, "Select a valid choice."),
    ],
)  # fmt: skip
def test_an_invalid_rule_is_refused_with_its_errors_and_saves_nothing(
    site, admin, project, fields, error
):
    before = site.rules(project)
    page = new_rule(admin, project, **{"name": f"Invalid {HOSTILE}", **fields})
    assert page.status == 400
    assert error in page.text
    assert "Please correct the errors below." in page.text
    assert HOSTILE not in page.text
    assert site.rules(project) == before


def test_an_invalid_edit_is_refused_and_the_page_shows_the_saved_rule(site, admin, project):
    rule_id = rule_id_of(new_rule(admin, project, name="Saved name"))
    page = admin.post(f"{project['alerts']}/{rule_id}/", {"name": "Typed name",
                                                          "interval_minutes": 5})  # fmt: skip
    assert page.status == 400
    assert "Choose at least one trigger" in page.text
    assert "<h1>Saved name" in page.text
    assert 'value="Typed name"' in page.text
    assert site.rules(project)[-1][1] == "Saved name"


# -- Channels and test alerts ----------------------------------------------------------------


def test_channels_are_added_and_removed(site, admin, project):
    rule_id = rule_id_of(new_rule(admin, project, name="Channels"))
    base = f"{project['alerts']}/{rule_id}"
    page = admin.post(f"{base}/channels/", {"channel-kind": "email",
                                            "channel-addresses": " a@example.com \n\nb@example.com"})  # fmt: skip
    assert "Added Email → a@example.com, b@example.com." in messages(page)
    page = admin.post(f"{base}/channels/", {"channel-kind": "discord",
                                            "channel-url": "https://discord.example.com/api/x"})  # fmt: skip
    assert page.status == 200
    refused = admin.post(f"{base}/channels/", {"channel-kind": "webhook",
                                               "channel-url": "file:///etc/passwd"})  # fmt: skip
    assert refused.status == 400
    assert "Enter an http:// or https:// URL." in refused.text
    email, discord = site.channels(rule_id)
    assert email[1:3] == ("email", "a@example.com\nb@example.com")
    assert discord[1:4] == ("discord", "", "https://discord.example.com/api/x")
    assert f'id="channel-{email[0]}"' in page.text
    assert "Signing secret" not in page.text  # only a generic webhook signs

    page = admin.post(f"{base}/channels/{email[0]}/remove/")
    assert "Removed Email → a@example.com, b@example.com." in messages(page)[0]
    assert [c[0] for c in site.channels(rule_id)] == [discord[0]]
    assert admin.post(f"{base}/channels/{email[0]}/remove/").status == 404
    other = rule_id_of(new_rule(admin, project, name="Other"))
    assert admin.post(f"{project['alerts']}/{other}/channels/{discord[0]}/test/").status == 404


def test_a_test_alert_to_a_local_receiver_is_sent_signed_and_recorded(
    site, admin, project, receiver
):
    page = new_rule(admin, project, name="Webhook", **{"channel-kind": "webhook",
                                                       "channel-url": receiver.url})  # fmt: skip
    rule_id = rule_id_of(page)
    ((channel_id, _, _, url, secret),) = site.channels(rule_id)
    assert url == receiver.url
    assert f'<code id="secret-{channel_id}" class="secret">{secret}</code>' in page.text
    assert "X-Bugnet-Signature: sha256=&lt;hex&gt;" in page.text
    assert "HMAC-SHA256" in page.text
    assert html.escape(receiver.url) in page.text

    page = admin.post(f"{project['alerts']}/{rule_id}/channels/{channel_id}/test/")
    assert page.status == 200
    assert page.url.endswith(f"/alerts/{rule_id}/#channel-{channel_id}")
    assert (f"Sent a test alert to Webhook (JSON, signed) → http://127.0.0.1:"
            f"{receiver.port}/…: HTTP 200.") in messages(page)  # fmt: skip
    (message,) = receiver.received("webhook")
    assert hmac_ok(secret, message)
    assert message.raw["action"] == "test"
    ((delivery_id, action, kind, status, attempts, error, issue),) = site.deliveries(rule_id)
    assert (action, kind, status, attempts, error, issue) == ("test", "webhook", "sent", 1, "",
                                                              None)  # fmt: skip
    assert site.attempts(delivery_id) == [(True, "HTTP 200")]
    row = page.text[page.text.index(f'id="delivery-{delivery_id}"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="issue">test</td>' in row
    assert '<span class="delivery-sent">sent</span>' in row
    assert "1 attempt</summary>" in row
    assert re.search(r'<span class="delivery-sent">ok</span>:\s+HTTP 200', row)
    settings = admin.get(f"{project['settings']}/").text
    row = settings[settings.index(f'id="rule-{rule_id}"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="delivery-sent">sent</span>' in row
    assert "a test alert" in row


def test_a_test_alert_to_a_closed_port_shows_why_it_failed(site, admin, project):
    url = f"http://127.0.0.1:{free_port()}/hook"
    page = new_rule(admin, project, name="Down", **{"channel-kind": "webhook", "channel-url": url})
    rule_id = rule_id_of(page)
    ((channel_id, *_),) = site.channels(rule_id)
    page = admin.post(f"{project['alerts']}/{rule_id}/channels/{channel_id}/test/")
    assert page.status == 200
    assert re.search(r'<li class="error">The test alert to Webhook \(JSON, signed\) → '
                     r'http://127\.0\.0\.1:\d+/… failed: connection refused</li>', page.text)  # fmt: skip
    ((delivery_id, _, _, status, attempts, error, _),) = site.deliveries(rule_id)
    assert (status, attempts, error) == ("failed", 1, "connection refused")
    assert site.attempts(delivery_id) == [(False, "connection refused")]
    assert '<span class="delivery-failed">failed</span>' in page.text
    assert '<div class="last-error">connection refused</div>' in page.text


# -- Who may do what -------------------------------------------------------------------------


def test_a_member_sees_a_rule_read_only_and_may_change_nothing(site, admin, project, member):
    page = new_rule(admin, project, name="Members look", **{
        "channel-kind": "webhook", "channel-url": "https://hooks.example.com/secret-path"})  # fmt: skip
    rule_id = rule_id_of(page)
    ((channel_id, *_, secret),) = site.channels(rule_id)
    base = f"{project['alerts']}/{rule_id}"
    page = member.get(f"{base}/")
    assert page.status == 200
    assert "Only owners and admins of Default change alert rules" in page.text
    assert re.search(r"Webhook</strong> \(JSON, signed\)\s+→ https://hooks\.example\.com/…</div>",
                     page.text)  # fmt: skip
    for hidden in (secret, "secret-path", "Send test alert", "Save the rule", "Delete the rule",
                   "Add the channel", 'method="post" action="/projects'):  # fmt: skip
        assert hidden not in page.text, hidden
    settings = member.get(f"{project['settings']}/")
    assert "Members look</a>" in settings.text
    assert "Add a rule" not in settings.text
    for path, data in [
        (f"{project['alerts']}/new/", {"name": "x", "on_new": "on", "interval_minutes": 1}),
        (f"{base}/", {"name": "Taken", "on_new": "on", "interval_minutes": 1}),
        (f"{base}/delete/", {}),
        (f"{base}/channels/", {"channel-kind": "email"}),
        (f"{base}/channels/{channel_id}/remove/", {}),
        (f"{base}/channels/{channel_id}/test/", {}),
    ]:
        assert member.post(path, data).status == 403, path
    assert member.get(f"{project['alerts']}/new/").status == 403
    assert site.rules(project)[-1][1] == "Members look"
    assert len(site.channels(rule_id)) == 1
    assert site.deliveries(rule_id) == []


def test_a_user_outside_the_projects_teams_gets_404s(site, admin, project):
    email = f"alerts-outsider-{site.tag}@example.com"
    site.create_user(admin, email)
    outsider = site.login(email)
    rule_id, *_ = site.rules(project)[0]
    ((channel_id, *_),) = site.channels(rule_id)
    base = f"{project['alerts']}/{rule_id}"
    for path in (f"{base}/", f"{project['alerts']}/new/"):
        assert outsider.get(path).status == 404, path
    for path in (f"{base}/", f"{base}/delete/", f"{base}/channels/",
                 f"{base}/channels/{channel_id}/test/", f"{base}/channels/{channel_id}/remove/"):  # fmt: skip
        assert outsider.post(path, {"name": "x"}).status == 404, path
    assert site.rules(project)[0][0] == rule_id
    # An admin sees nothing of one project's rules under another's URL.
    other = site.create_project(admin, f"Other alerts {site.tag}")
    assert admin.get(f"{other['alerts']}/{rule_id}/").status == 404
    assert admin.post(f"{other['alerts']}/{rule_id}/delete/").status == 404


# -- A user's alert emails -------------------------------------------------------------------


def member_addresses(server: Server, project_id: int) -> list[str]:
    script = (
        "from bugnet_server.alerts.delivery import member_addresses\n"
        "from bugnet_server.projects.models import Project\n"
        f"print('|'.join(member_addresses(Project.objects.get(pk={project_id}))))\n"
    )
    run = server.bugnet("shell", "-c", script)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip().splitlines()[-1].split("|")


def test_a_user_turns_alert_emails_off_or_mutes_a_project(server, site, admin, project):
    email = f"alerts-prefs-{site.tag}@example.com"
    site.create_user(admin, email, teams=project["team"])
    user = site.login(email)
    user_id = site.user_id(email)
    page = user.get("/account/")
    assert page.status == 200
    assert '<h2 id="alerts-heading">Email alerts</h2>' in page.text
    assert re.search(r'<input type="checkbox" name="alerts"[^>]*checked', page.text)
    assert f'name="muted" value="{project["id"]}"' in page.text
    assert "Change your password" in page.text
    assert email in member_addresses(server, project["id"])

    page = user.post("/account/alerts/", {"alerts": "on", "muted": project["id"]})
    assert page.status == 200
    assert page.url.endswith("/account/#alerts")
    assert "Saved your alert emails." in messages(page)
    assert re.search(rf'name="muted" value="{project["id"]}"[^>]*checked', page.text)
    pref_id, alerts = one(server, "SELECT id, alerts FROM alerts_emailpreference WHERE user_id = %s",
                          user_id)  # fmt: skip
    assert alerts
    muted = server.query("SELECT project_id FROM alerts_emailpreference_muted_projects "
                         "WHERE emailpreference_id = %s", (pref_id,))  # fmt: skip
    assert muted == [(project["id"],)]
    assert email not in member_addresses(server, project["id"])

    page = user.post("/account/alerts/", {})  # everything off, nothing muted
    assert one(server, "SELECT alerts FROM alerts_emailpreference WHERE user_id = %s",
               user_id) in (False, 0)  # fmt: skip
    assert not server.query("SELECT 1 FROM alerts_emailpreference_muted_projects "
                            "WHERE emailpreference_id = %s", (pref_id,))  # fmt: skip
    assert not re.search(r'<input type="checkbox" name="alerts"[^>]*checked', page.text)
    assert email not in member_addresses(server, project["id"])

    user.post("/account/alerts/", {"alerts": "on"})
    assert email in member_addresses(server, project["id"])
    # A project the user cannot see is no choice.
    other = site.create_project(admin, f"Not theirs {site.tag}")
    refused = user.post("/account/alerts/", {"alerts": "on", "muted": other["id"]})
    assert refused.status == 400
    assert "Select a valid choice." in refused.text
    # The password form still works beside it.
    changed = user.post("/account/", {"old_password": PASSWORD, "new_password1": PASSWORD + "!",
                                      "new_password2": PASSWORD + "!"})  # fmt: skip
    assert "Your password was changed." in messages(changed)


# -- An issue's alerts -----------------------------------------------------------------------


def send_event(server: Server, project: dict[str, Any], message: str) -> str:
    event_id = uuid.uuid4().hex
    payload = json.dumps({"event_id": event_id, "message": message, "level": "error"}).encode()
    body = b"\n".join([b"{}", json.dumps({"type": "event", "length": len(payload)}).encode(),
                       payload])  # fmt: skip
    request = urllib.request.Request(
        f"{server.url}/api/{project['id']}/envelope/", body, method="POST",
        headers={"X-Sentry-Auth": f"Sentry sentry_key={project['key']}, sentry_version=7",
                 "Content-Type": "application/x-sentry-envelope"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    return event_id


def test_an_issues_alerts_show_in_its_activity_with_every_attempt(server, site, admin, receiver):
    project = site.create_project(admin, f"Alerted {site.tag}")
    sent = rule_id_of(new_rule(admin, project, name=f"Hook {HOSTILE}", **{
        "channel-kind": "webhook", "channel-url": receiver.url}))  # fmt: skip
    down = f"http://127.0.0.1:{free_port()}/down"
    failing = rule_id_of(new_rule(admin, project, name="Down hook", **{
        "channel-kind": "slack", "channel-url": down}))  # fmt: skip
    event_id = send_event(server, project, f"alerted {site.tag} <b>bold</b>")
    wait_for(lambda: receiver.requests, 30, "the alert")
    issue_id = one(server, "SELECT issue_id FROM issues_event WHERE event_id = %s", event_id)

    def shown() -> Page | None:
        page = admin.get(f"/issues/{issue_id}/")
        return page if "retrying at" in page.text and "HTTP 200" in page.text else None

    page = wait_for(shown, 30, "the deliveries on the issue page")
    activity = page.text[page.text.index("<h2>Activity</h2>") :]
    assert HOSTILE not in activity
    assert (f'<span class="who">Alert</span> <a href="{project["alerts"]}/{sent}/">'
            f"“Hook {html.escape(HOSTILE)}”</a> (new issue)") in activity  # fmt: skip
    port = receiver.port
    assert (f'→ Webhook http://127.0.0.1:{port}/…: <span class="delivery-sent">sent</span>'
            ) in activity  # fmt: skip
    assert re.search(r'<span class="delivery-sent">ok</span>:\s+HTTP 200', activity)
    assert f'<a href="{project["alerts"]}/{failing}/">“Down hook”</a> (new issue)' in activity
    assert re.search(r'→ Slack http://127\.0\.0\.1:\d+/…: <span class="delivery-pending">failed: '
                     r"connection refused, retrying at \d\d:\d\d UTC</span>", activity)  # fmt: skip
    assert re.search(r'<span class="delivery-failed">failed</span>:\s+connection refused', activity)
    assert "opened it (first event)" in activity

    rule_page = admin.get(f"{project['alerts']}/{sent}/")
    short_id = one(server, "SELECT short_id FROM issues_issue WHERE id = %s", issue_id)
    assert re.search(rf'<a href="/issues/{issue_id}/">[A-Z0-9]+-{short_id:X}</a>', rule_page.text)
    assert "<td>new issue</td>" in rule_page.text
    pending = admin.get(f"{project['alerts']}/{failing}/")
    assert re.search(r"next try <time", pending.text)
