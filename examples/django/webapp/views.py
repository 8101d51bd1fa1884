"""Views of the example web app: a login, a grid of edge previews, and a validator for delegated mode."""
from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import render

from .tokens import edge_token


def login(request):
    """Demo login (no password!): stores the user name in Django's session."""
    user = request.GET.get("user", "")
    if not user.isalnum():
        return HttpResponseBadRequest("user must be alphanumeric")
    request.session["user"] = user
    return HttpResponse(f"logged in as {user}\n", content_type="text/plain")


def logout(request):
    request.session.flush()
    return HttpResponse("logged out\n", content_type="text/plain")


def grid(request):
    """The page a viewer shows: <img> tags pointing at the edge, each carrying a short token."""
    user = request.session.get("user")
    if not user:
        return HttpResponse("log in first\n", status=401, content_type="text/plain")
    token = edge_token(settings.EDGE_JWT_SECRET, user, studies=settings.EDGE_STUDIES)
    images = [
        f"{settings.EDGE_URL}/instances/{i}/preview?token={token}" for i in settings.EDGE_INSTANCES
    ]
    return render(request, "grid.html", {"images": images, "user": user})


def edge_auth(request):
    """Validator for the edge's delegated mode (and nginx auth_request): is the session logged in?

    The edge forwards the browser's Cookie header plus X-Original-URI / X-Original-Method.
    2xx allows, 401 denies. The optional X-Edge-Allowed-Studies header narrows what the user
    may see; Cache-Control max-age tells the edge how long it may reuse this answer.
    """
    if not request.session.get("user"):
        return HttpResponse(status=401)
    resp = HttpResponse(status=204)
    if settings.EDGE_STUDIES:
        resp["X-Edge-Allowed-Studies"] = ",".join(settings.EDGE_STUDIES)
    resp["Cache-Control"] = "private, max-age=60"
    return resp
