from django.urls import include, path

from bugnet_server.api.views import api
from bugnet_server.ingest import views as ingest_views

urlpatterns = [
    path("_health/", ingest_views.health),
    path("api/0/", api.urls),
    path("", include("bugnet_server.ingest.urls")),
]
