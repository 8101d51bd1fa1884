"""URL map of the example web app."""
from django.urls import path

from . import views

urlpatterns = [
    path("login", views.login),
    path("logout", views.logout),
    path("grid", views.grid),
    path("edge-auth", views.edge_auth),
]
