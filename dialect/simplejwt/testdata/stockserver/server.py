"""Runs the stock simplejwt server for tokend's tests.

It migrates a fresh SQLite database (STOCK_DB), creates the user
STOCK_USERNAME with STOCK_PASSWORD and primary key STOCK_USER_ID, listens
on a free loopback port with Django's own development server, prints
"listening on 127.0.0.1:PORT" on stdout and serves until it is killed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.servers.basehttp import (  # noqa: E402
    ThreadedWSGIServer,
    WSGIRequestHandler,
)
from django.core.wsgi import get_wsgi_application  # noqa: E402


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def main():
    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user(
        id=int(os.environ["STOCK_USER_ID"]),
        username=os.environ["STOCK_USERNAME"],
        password=os.environ["STOCK_PASSWORD"],
    )
    user.save()
    httpd = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
    httpd.daemon_threads = True
    httpd.set_app(get_wsgi_application())
    print("listening on 127.0.0.1:%d" % httpd.server_address[1], flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
