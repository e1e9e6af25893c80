# cartrial's container image: the hash-pinned dependencies of requirements.lock, the app, a user
# without privileges. It starts with `cartrial serve`: migrations, then gunicorn serving the app
# and its static files on port 8000. compose.yaml runs it beside PostgreSQL 16; docs/operations.md.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=cartrial.config.settings \
    CARTRIAL_STATIC_ROOT=/app/staticfiles \
    CARTRIAL_EXPORT_DIR=/app/exports \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# Every dependency exactly as locked, each file checked against its hash. The few source archives
# among them (titlecase) are pure Python, built without a compiler. The lock holds the development
# tools too (one lock for the project): they are installed but never run here.
COPY requirements.lock ./
RUN python -m pip install --require-hashes --no-deps -r requirements.lock

# The app itself, built with the locked setuptools (no download at this step).
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m pip install --no-deps --no-build-isolation . && rm -rf src build

# The server runs as `cartrial` (no shell, no home of its own beyond /app): it can write only
# the static files' folder, the exports and the backups.
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin cartrial \
    && mkdir -p /app/staticfiles /app/exports /app/backups \
    && chown cartrial:cartrial /app/staticfiles /app/exports /app/backups
USER cartrial

# The static files, collected and compressed once into the image (a key for this step only: the
# settings refuse to start without one; nothing is signed with it).
RUN CARTRIAL_SECRET_KEY=collectstatic-during-the-image-build-only-never-used-to-sign python -m django collectstatic --noinput

EXPOSE 8000
# Migrations first (`cartrial serve` applies them), then gunicorn (cartrial.config.gunicorn) in
# place of this process, so that it receives the container's stop signal. The long jobs' worker
# runs as its own container (compose.yaml: `cartrial jobs worker`).
CMD ["cartrial", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
