"""The web UI's pages. Issue pages live under ``/issues/<id>/`` (the API's ``permalink``),
project pages under ``/projects/<org>/<project>/``."""

from __future__ import annotations

from django.urls import include, path

from bugnet_server.web.views import accounts, admin, issue, issues, projects

app_name = "web"

urlpatterns = [
    path("", projects.project_list, name="projects"),
    path("favicon.ico", projects.no_icon),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", accounts.LogoutView.as_view(), name="logout"),
    path("account/", accounts.account, name="account"),
    path("users/", admin.users, name="users"),
    path("issues/", issues.all_issues, name="all-issues"),
    path("issues/bulk/", issues.bulk, name="bulk"),
    path("issues/<int:issue_id>/", issue.detail, name="issue"),
    path("issues/<int:issue_id>/status/", issue.status, name="issue-status"),
    path("issues/<int:issue_id>/events/<str:event_id>/", issue.detail, name="issue-event"),
    path("issues/<int:issue_id>/events/<str:event_id>/json/", issue.event_json, name="event-json"),
    path("projects/new/", admin.project_create, name="project-create"),
    path("projects/<slug:org>/<slug:project>/", issues.project_issues, name="project-issues"),
    path("projects/<slug:org>/<slug:project>/setup/", admin.setup, name="project-setup"),
    path(
        "projects/<slug:org>/<slug:project>/setup/test-event/",
        admin.test_event,
        name="project-test-event",
    ),
    path("projects/<slug:org>/<slug:project>/settings/", admin.settings, name="project-settings"),
    path("", include("bugnet_server.web.urls_admin")),
]
