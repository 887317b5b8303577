from __future__ import annotations

from django.urls import path

from django_app import views

urlpatterns = [
    path("boom/<int:order>/", views.boom, name="boom"),
    path("ok/", views.ok),
    path("missing/", views.missing),
    path("forbidden/", views.forbidden),
    path("echo/", views.echo),
    path("form/", views.form),
    path("unread/", views.unread),
    path("logged/", views.logged),
    path("stream/", views.stream),
    path("query/", views.query),
    path("handled/", views.handled),
    path("template/syntax/", views.template_syntax),
    path("template/render/", views.template_render),
    path("tagged/<int:n>/", views.tagged),
    path("async/boom/", views.async_boom),
    path("async/tagged/<int:n>/", views.async_tagged),
    path("api/boom/", views.ApiBoom.as_view()),
    path("api/unavailable/", views.ApiUnavailable.as_view()),
    path("api/missing/", views.ApiMissing.as_view()),
]
