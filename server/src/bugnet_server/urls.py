from django.urls import path

from bugnet_server.api.views import api
from bugnet_server.runtime.views import health

# The ingest endpoints (/api/<project id>/envelope/ and /store/) are not here: bugnet_server.wsgi
# hands them to bugnet_server.ingest.app before Django sees them.
urlpatterns = [
    path("_health/", health),
    path("api/0/", api.urls),
]
