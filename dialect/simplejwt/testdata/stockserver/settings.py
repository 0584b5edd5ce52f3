"""Settings of the stock simplejwt server that tokend's tests compare with.

A stock Django project with Django REST framework and
django-rest-framework-simplejwt, as `django-admin startproject` and the
simplejwt documentation set one up; the test passes what varies in the
environment (STOCK_*). Nothing here changes how simplejwt answers.
"""

import os
from datetime import timedelta

SECRET_KEY = os.environ["STOCK_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "urls"
USE_TZ = True

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# startproject's template settings, so that DRF's browsable API renders.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["STOCK_DB"],
    }
}

# A fast hasher: the tests are about the wire format, not the hash cost.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(days=7),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=30),
    "ALGORITHM": "HS256",
    "SIGNING_KEY": os.environ["STOCK_SIGNING_KEY"],
    "USER_ID_CLAIM": os.environ.get("STOCK_USER_ID_CLAIM", "user_id"),
    "TOKEN_TYPE_CLAIM": os.environ.get("STOCK_TOKEN_TYPE_CLAIM", "token_type"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": True,
}
