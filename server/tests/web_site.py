"""What a web UI test module makes on the shared server, through the pages an admin uses:
signed-in users, projects with their team and key. Names carry a tag unique to the module, so
modules sharing one server never meet; a module subclasses ``Site`` for its own queries."""

from __future__ import annotations

import re
import textwrap
import time
from typing import Any

from conftest import Server
from web_client import Page, WebClient


def shell(server: Server, code: str) -> str:
    """Run ``code`` in ``bugnet shell`` against ``server``'s database; its output."""
    result = server.bugnet("shell", "-c", textwrap.dedent(code))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def join_team(server: Server, email: str, team: str, projects: list[str]) -> None:
    """Make ``email`` a member of the default organization and of a new team ``team`` (slug and
    name) that has ``projects`` (slugs)."""
    shell(
        server,
        f"""
        from django.contrib.auth import get_user_model
        from bugnet_server.projects.models import Organization, OrganizationMember, Project, Team
        org = Organization.objects.get(slug="default")
        user = get_user_model().objects.get(email={email!r})
        OrganizationMember.objects.get_or_create(organization=org, user=user)
        team = Team.objects.create(organization=org, slug={team!r}, name={team!r})
        team.members.add(user)
        for slug in {projects!r}:
            Project.objects.get(slug=slug).teams.add(team)
        """,
    )


def one(server: Server, sql: str, *params: Any) -> Any:
    """The one row ``sql`` selects (its one value if it has one column)."""
    rows = server.query(sql, params)
    assert len(rows) == 1, (sql, params, rows)
    return rows[0][0] if len(rows[0]) == 1 else rows[0]


class Site:
    """What this module made on the shared server: names unique to it, each user's password
    ``password`` unless said otherwise."""

    def __init__(self, server: Server, password: str) -> None:
        self.server = server
        self.password = password
        self.tag = f"{time.monotonic_ns():x}"
        self.org_id = one(server, "SELECT id FROM projects_organization WHERE slug = %s", "default")

    def login(self, email: str, password: str | None = None) -> WebClient:
        client = WebClient(self.server.url)
        client.login(email, password or self.password)
        return client

    def superuser(self, email: str) -> WebClient:
        """A new superuser (made with ``bugnet user create``), signed in."""
        made = self.server.bugnet("user", "create", email, "--password", self.password,
                                  "--superuser")  # fmt: skip
        assert made.returncode == 0, made.stderr
        return self.login(email)

    def create_project(self, admin: WebClient, name: str, team: str = "") -> dict[str, Any]:
        """A project made on the new-project page, in a new team (``team``, else "NAME team"):
        its ``slug``, ``id``, ``team`` id, public ``key``, the ``page`` it opened on, and the
        paths of its pages (``base``) and its ``settings``."""
        page = admin.post("/projects/new/", {"name": name, "organization": self.org_id,
                                             "new_team": team or f"{name} team"})  # fmt: skip
        assert page.status == 200, page.text
        match = re.search(r"/projects/default/([\w-]+)/setup/$", page.url)
        assert match, page.url
        slug = match.group(1)
        project_id = one(
            self.server, "SELECT id FROM projects_project WHERE organization_id = %s AND slug = %s",
            self.org_id, slug,
        )  # fmt: skip
        team_id = one(self.server, "SELECT team_id FROM projects_project_teams "
                      "WHERE project_id = %s", project_id)  # fmt: skip
        key = one(self.server, "SELECT public_key FROM projects_projectkey WHERE project_id = %s",
                  project_id)  # fmt: skip
        base = f"/projects/default/{slug}"
        return {"slug": slug, "id": project_id, "team": team_id, "key": key, "page": page,
                "base": base, "settings": f"{base}/settings"}  # fmt: skip

    def create_user(self, admin: WebClient, email: str, **fields: Any) -> Page:
        """POST the new-user form: a member of the organization with ``self.password``, unless
        ``fields`` say otherwise; the page it answered."""
        data = {"email": email, "mode": "password", "password": self.password,
                "organization": self.org_id, "role": "member", **fields}  # fmt: skip
        return admin.post("/users/", data)

    def user_id(self, email: str) -> int:
        return int(one(self.server, "SELECT id FROM auth_user WHERE username = %s", email))
