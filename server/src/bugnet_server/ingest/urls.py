from django.urls import re_path

from bugnet_server.ingest import views

# Relay tolerates a missing trailing slash and doubled slashes; so do we. [0-9], not \d:
# Django's regexes are Unicode, and \d would take U+0661 (Arabic-Indic one) for a project id.
urlpatterns = [
    re_path(r"^(?:/*)api/+(?P<project_id>[0-9]+)/+envelope/*$", views.envelope_endpoint),
    re_path(r"^(?:/*)api/+(?P<project_id>[0-9]+)/+store/*$", views.store_endpoint),
    re_path(r"^(?:/*)api/+(?P<project_id>[^/]+)/+(?:envelope|store)/*$", views.bad_project_id),
]
