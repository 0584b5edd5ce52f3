#!/usr/bin/python3
"""Writes vectors.json: password hashes made by the real libraries that
tokend imports hashes from, for secret's tests (run: make_vectors.py >
vectors.json). Needs Debian's python3-django, python3-bcrypt,
python3-passlib, python3-argon2 and python3-werkzeug.

Two formats have no implementation in Debian and are computed here with
hashlib exactly as their origin does: Keycloak's pbkdf2 credentials
(PBKDF2-HMAC over a 16-byte salt, 512-bit key for sha256/sha512, as
Keycloak's Pbkdf2*PasswordHashProvider; 160-bit for plain pbkdf2) and
Werkzeug 3's scrypt (hashlib.scrypt, 64-byte key; Debian's Werkzeug 2.2
predates it)."""
import base64, hashlib, json, os, sys

import bcrypt
import django
from django.conf import settings

settings.configure(PASSWORD_HASHERS=[
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.SHA1PasswordHasher",
    "django.contrib.auth.hashers.UnsaltedMD5PasswordHasher",
    "django.contrib.auth.hashers.UnsaltedSHA1PasswordHasher",
])
django.setup()
from django.contrib.auth.hashers import make_password
from passlib.hash import argon2 as passlib_argon2, scrypt as passlib_scrypt, bcrypt as passlib_bcrypt
import werkzeug.security

PASSWORDS = ["correct horse battery staple", "pässwörd-ünïcödé-密码", "x" * 80 + "-long"]

def django_hash(pw, name):
    return make_password(pw, hasher=name)

def keycloak(pw, alg):
    salt = os.urandom(16)
    digest, size = {"pbkdf2-sha256": ("sha256", 64), "pbkdf2-sha512": ("sha512", 64), "pbkdf2": ("sha1", 20)}[alg]
    iters = {"pbkdf2-sha256": 27500, "pbkdf2-sha512": 30000, "pbkdf2": 20000}[alg]
    key = hashlib.pbkdf2_hmac(digest, pw.encode(), salt, iters, size)
    return json.dumps({"algorithm": alg, "hashIterations": iters,
                       "salt": base64.b64encode(salt).decode(), "value": base64.b64encode(key).decode()})

def keycloak_export(pw):
    flat = json.loads(keycloak(pw, "pbkdf2-sha256"))
    return json.dumps({
        "credentialData": json.dumps({"hashIterations": flat["hashIterations"], "algorithm": flat["algorithm"], "additionalParameters": {}}),
        "secretData": json.dumps({"value": flat["value"], "salt": flat["salt"], "additionalParameters": {}}),
    })

def werkzeug_scrypt(pw, n=2**14, r=8, p=1):
    salt = base64.b64encode(os.urandom(12)).decode().replace("+", "A").replace("/", "B")
    key = hashlib.scrypt(pw.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p, dklen=64)
    return f"scrypt:{n}:{r}:{p}${salt}${key.hex()}"

makers = {
    "bcrypt": lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(10)).decode(),
    "bcrypt-2a": lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode(),
    "bcrypt-2y": lambda pw: passlib_bcrypt.using(ident="2y", rounds=10).hash(pw),
    "django-pbkdf2-sha256": lambda pw: django_hash(pw, "pbkdf2_sha256"),
    "django-pbkdf2-sha1": lambda pw: django_hash(pw, "pbkdf2_sha1"),
    "django-argon2": lambda pw: django_hash(pw, "argon2"),
    "django-bcrypt-sha256": lambda pw: django_hash(pw, "bcrypt_sha256"),
    "django-bcrypt": lambda pw: django_hash(pw, "bcrypt"),
    "keycloak-pbkdf2-sha256": lambda pw: keycloak(pw, "pbkdf2-sha256"),
    "keycloak-pbkdf2-sha512": lambda pw: keycloak(pw, "pbkdf2-sha512"),
    "keycloak-pbkdf2": lambda pw: keycloak(pw, "pbkdf2"),
    "keycloak-export": keycloak_export,
    "argon2id": lambda pw: passlib_argon2.using(type="ID", memory_cost=19456, rounds=2, parallelism=1).hash(pw),
    "argon2i": lambda pw: passlib_argon2.using(type="I", memory_cost=8192, rounds=2, parallelism=1).hash(pw),
    "scrypt": lambda pw: passlib_scrypt.using(rounds=14).hash(pw),
    "werkzeug-pbkdf2": lambda pw: werkzeug.security.generate_password_hash(pw, method="pbkdf2:sha256:50000"),
    "werkzeug-pbkdf2-default": lambda pw: werkzeug.security.generate_password_hash(pw),
    "werkzeug-scrypt": werkzeug_scrypt,
    "django-md5": lambda pw: django_hash(pw, "md5"),
    "django-sha1": lambda pw: django_hash(pw, "sha1"),
    "django-unsalted-md5": lambda pw: django_hash(pw, "unsalted_md5"),
    "django-unsalted-sha1": lambda pw: django_hash(pw, "unsalted_sha1"),
    "md5": lambda pw: hashlib.md5(pw.encode()).hexdigest(),
    "sha1": lambda pw: hashlib.sha1(pw.encode()).hexdigest(),
}

out = []
for name, make in makers.items():
    for pw in PASSWORDS:
        out.append({"maker": name, "password": pw, "hash": make(pw)})
json.dump(out, sys.stdout, indent=1, ensure_ascii=False)
sys.stdout.write("\n")
