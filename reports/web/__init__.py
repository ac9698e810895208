"""The daemon's pages: `GET /` (every served market at a glance) and `GET /market/<key>` (one
market's chart), server-rendered HTML with inline CSS and SVG: no script, font or other host."""
