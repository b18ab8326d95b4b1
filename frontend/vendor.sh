#!/usr/bin/env sh
# Copy the front-end libraries the pages load into the package's static folder, with their
# licences. Run by `make` after `npm ci`; the copies are not kept in git.
set -eu
cd "$(dirname "$0")"
out=../src/meridian/web/static/vendor
mkdir -p "$out"
m=node_modules
cp "$m/d3-array/dist/d3-array.min.js" "$out/d3-array.min.js"
cp "$m/d3-array/LICENSE" "$out/d3-array.LICENSE"
cp "$m/d3-geo/dist/d3-geo.min.js" "$out/d3-geo.min.js"
cp "$m/d3-geo/LICENSE" "$out/d3-geo.LICENSE"
cp "$m/topojson-client/dist/topojson-client.min.js" "$out/topojson-client.min.js"
cp "$m/topojson-client/LICENSE" "$out/topojson-client.LICENSE"
cp "$m/world-atlas/countries-110m.json" "$out/countries-110m.json"
cp "$m/world-atlas/LICENSE.md" "$out/world-atlas.LICENSE" 2>/dev/null || cp "$m/world-atlas/LICENSE" "$out/world-atlas.LICENSE"
# /docs (Swagger UI) and /redoc (ReDoc): the API's documentation pages, drawn offline
cp "$m/swagger-ui-dist/swagger-ui-bundle.js" "$out/swagger-ui-bundle.js"
cp "$m/swagger-ui-dist/swagger-ui.css" "$out/swagger-ui.css"
cp "$m/swagger-ui-dist/LICENSE" "$out/swagger-ui.LICENSE"
cp "$m/swagger-ui-dist/NOTICE" "$out/swagger-ui.NOTICE"
cp "$m/swagger-ui-dist/swagger-ui-bundle.js.LICENSE.txt" "$out/swagger-ui-bundle.js.LICENSE.txt"
# ReDoc's sidebar shows a logo from its CDN: the copy points it nowhere, so /redoc makes no
# request off this origin (the image hides itself when it does not load)
sed 's#https://cdn.redoc.ly/redoc/logo-mini.svg##g' "$m/redoc/bundles/redoc.standalone.js" >"$out/redoc.standalone.js"
cp "$m/redoc/LICENSE" "$out/redoc.LICENSE"
cp "$m/redoc/bundles/redoc.standalone.js.LICENSE.txt" "$out/redoc.standalone.js.LICENSE.txt"
echo "vendored $(ls "$out" | wc -l) files into src/meridian/web/static/vendor"
