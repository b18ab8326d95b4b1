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
echo "vendored $(ls "$out" | wc -l) files into src/meridian/web/static/vendor"
