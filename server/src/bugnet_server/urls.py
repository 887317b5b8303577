from django.urls import include, path

from bugnet_server.ingest import views as ingest_views

urlpatterns = [
    path("_health/", ingest_views.health),
    path("", include("bugnet_server.ingest.urls")),
]
