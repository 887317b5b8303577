from django.urls import re_path

from bugnet_server.ingest import views

# Relay tolerates a missing trailing slash; so do we.
urlpatterns = [
    re_path(r"^api/(?P<project_id>\d+)/envelope/?$", views.envelope_endpoint),
    re_path(r"^api/(?P<project_id>\d+)/store/?$", views.store_endpoint),
]
