// Meridian's pages: small behaviours shared by every page. No inline script anywhere (the
// Content-Security-Policy forbids it); page-specific code lives in its own file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A form whose button says data-confirm="…" asks first (approving, rejecting, loading a bundle).
  document.querySelectorAll("[data-confirm]").forEach((el) => {
    el.addEventListener("click", (event) => {
      if (!window.confirm(el.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  // <time data-local> shows the instant in the viewer's own zone as a tooltip.
  document.querySelectorAll("time[data-local]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.title = when.toLocaleString();
  });
});
