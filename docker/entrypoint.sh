#!/bin/sh
# The image's entrypoint: `serve` (the default) runs the app, anything else is a CLI command, so
#   docker compose run --rm app migrate | verify | projections rebuild | export --out /data/x.ndjson | ...
# Both exec node, so node gets the container's signals directly.
set -eu
APP_DIR="${APP_DIR:-/app}"
if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
  exec node "$APP_DIR/dist/src/main.js"
fi
exec node "$APP_DIR/dist/src/cli/main.js" "$@"
