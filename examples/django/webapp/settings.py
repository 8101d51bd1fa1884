"""Settings of the example web app that sits beside orthanc-edge (README: "Use from a web app").

Everything comes from the environment so tests and the benchmark can point it anywhere:
  EDGE_URL             where browsers reach orthanc-edge, e.g. https://edge.example.org
  EDGE_JWT_SECRET      the edge's auth.jwt.secret (HS256), shared with this app
  EDGE_STUDIES         comma-separated Orthanc study ids the demo user may see
  EDGE_INSTANCES       comma-separated Orthanc instance ids shown on the grid page
  DJANGO_DB            SQLite file for sessions (Django's default database session backend)
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
]
ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(BASE_DIR.parent / "db.sqlite3")),
    }
}
# Django's own session framework, default backend (database): what the nginx auth_request
# set-up this app replaces checks on every image.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
USE_TZ = True
LOGGING = {"version": 1, "disable_existing_loggers": False}

EDGE_URL = os.environ.get("EDGE_URL", "http://127.0.0.1:8080").rstrip("/")
EDGE_JWT_SECRET = os.environ.get("EDGE_JWT_SECRET", "")
EDGE_STUDIES = [s for s in os.environ.get("EDGE_STUDIES", "").split(",") if s]
EDGE_INSTANCES = [s for s in os.environ.get("EDGE_INSTANCES", "").split(",") if s]
