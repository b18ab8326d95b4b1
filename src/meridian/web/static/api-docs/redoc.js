// /redoc: ReDoc (vendored in /static/vendor) on this service's OpenAPI document.
// A file rather than an inline script, so the page's CSP allows scripts from this origin only.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapi, { hideDownloadButton: false }, root);
});
