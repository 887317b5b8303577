"""The WSGI application (what ``bugnet serve`` runs under its HTTP server)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bugnet_server.settings")
application = get_wsgi_application()
