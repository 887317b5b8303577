from django.urls import include, path

from bugnet_server.api.views import api

# Ingest (/api/<project id>/envelope/ and /store/) and /_health/ are not here:
# bugnet_server.wsgi hands them to plain WSGI apps before Django sees them.
urlpatterns = [
    path("api/0/", api.urls),
    path("", include("bugnet_server.web.urls")),
]
