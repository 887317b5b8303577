"""The admin pages' own URLs, included by ``web/urls.py`` (names in the ``web`` namespace):
a project's teams, keys and alert rules, users, teams, your own alert emails, and the
set-password page of invite links, which lives under ``/login/`` because it answers without a
login."""

from __future__ import annotations

from django.urls import path

from bugnet_server.web.views import accounts, admin, admin_users, alerts

project = "projects/<slug:org>/<slug:project>/settings"
rule = f"{project}/alerts/<int:rule_id>"  # alerts/context.py links test alerts here
channel = f"{rule}/channels/<int:channel_id>"

urlpatterns = [
    path("login/activate/<str:uidb64>/<str:token>/", admin_users.activate, name="activate"),
    path("users/<int:user_id>/", admin_users.user_detail, name="user"),
    path("users/<int:user_id>/roles/", admin_users.user_roles, name="user-roles"),
    path("users/<int:user_id>/teams/", admin_users.user_teams, name="user-teams"),
    path("users/<int:user_id>/account/", admin_users.user_account, name="user-account"),
    path("users/<int:user_id>/link/", admin_users.user_link, name="user-link"),
    path("users/teams/", admin_users.teams, name="teams"),
    path("users/teams/<int:team_id>/", admin_users.team_detail, name="team"),
    path(f"{project}/teams/", admin.project_teams, name="project-teams"),
    path(f"{project}/keys/", admin.key_create, name="key-create"),
    path(f"{project}/keys/<int:key_id>/rate-limit/", admin.key_rate_limit, name="key-rate-limit"),
    path(
        f"{project}/keys/<int:key_id>/<slug:action>/", admin.key_state, name="key-state"
    ),  # action: disable, enable, rotate
    path(f"{project}/alerts/new/", alerts.rule_create, name="alert-rule-create"),
    path(f"{rule}/", alerts.rule_detail, name="alert-rule"),
    path(f"{rule}/delete/", alerts.rule_delete, name="alert-rule-delete"),
    path(f"{rule}/channels/", alerts.channel_add, name="alert-channel-add"),
    path(f"{channel}/remove/", alerts.channel_remove, name="alert-channel-remove"),
    path(f"{channel}/test/", alerts.channel_test, name="alert-channel-test"),
    path("account/alerts/", accounts.email_alerts, name="account-alerts"),
]
