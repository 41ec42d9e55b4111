#!/bin/sh
# Start `bigarrays serve` from BIGARRAYS_* environment variables (the container's interface).
#
#   BIGARRAYS_DATASETS     name=url,name=url  (unset or empty: build and serve the demo instead)
#   BIGARRAYS_HOST         address to bind inside the container (default 0.0.0.0)
#   BIGARRAYS_PORT         port (default 8000)
#   BIGARRAYS_WORKERS      uvicorn worker processes (default 1)
#   BIGARRAYS_CACHE_MB     decoded-chunk cache per worker, MiB (default 512)
#   BIGARRAYS_CACHE_REVALIDATE  seconds a cached chunk is served before storage is asked again (default 1)
#   BIGARRAYS_STORAGE_TIMEOUT   seconds the storage work of one request may take (default 30)
#   BIGARRAYS_WRITE_TOKEN  bearer token that allows PUT (unset: read-only)
#   BIGARRAYS_DEMO_DIR     where the demo datasets live (default /data/demo)
#
# `entrypoint.sh healthcheck` exits 0 when /healthz answers (used by HEALTHCHECK).
# `entrypoint.sh prepare` builds the demo datasets (when BIGARRAYS_DATASETS is unset) and exits,
# so that several replicas can then serve them without each building them.
# Any other arguments are run as a command (e.g. `bigarrays ingest ...`).
set -eu

host="${BIGARRAYS_HOST:-0.0.0.0}"
port="${BIGARRAYS_PORT:-8000}"

if [ "${1:-}" = "healthcheck" ]; then
    exec python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${port}/healthz', timeout=4).status == 200 else 1)"
fi
if [ "${1:-}" = "prepare" ]; then
    if [ -z "${BIGARRAYS_DATASETS:-}" ]; then
        exec bigarrays demo --no-serve --dir "${BIGARRAYS_DEMO_DIR:-/data/demo}"
    fi
    exit 0
fi
if [ "$#" -gt 0 ]; then
    exec "$@"
fi

if [ -z "${BIGARRAYS_DATASETS:-}" ]; then
    exec bigarrays demo --host "$host" --port "$port" --dir "${BIGARRAYS_DEMO_DIR:-/data/demo}"
fi

# name=url,name=url -> one NAME=URL argument each (dataset URLs never contain commas).
old_ifs="$IFS"
IFS=','
set -- $BIGARRAYS_DATASETS
IFS="$old_ifs"
if [ -n "${BIGARRAYS_WRITE_TOKEN:-}" ]; then
    set -- "$@" --write-token "$BIGARRAYS_WRITE_TOKEN"
fi
exec bigarrays serve "$@" --host "$host" --port "$port" \
    --workers "${BIGARRAYS_WORKERS:-1}" --cache-mb "${BIGARRAYS_CACHE_MB:-512}" \
    --cache-revalidate "${BIGARRAYS_CACHE_REVALIDATE:-1}" --storage-timeout "${BIGARRAYS_STORAGE_TIMEOUT:-30}"
