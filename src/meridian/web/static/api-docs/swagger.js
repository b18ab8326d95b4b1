// /docs: Swagger UI (vendored in /static/vendor) on this service's OpenAPI document.
// A file rather than an inline script, so the page's CSP allows scripts from this origin only.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    presets: [SwaggerUIBundle.presets.apis],
    // no badge from the public validator: the page stays on this origin
    validatorUrl: null,
  });
});
