// Meridian's pages: small behaviours shared by every page. No inline script anywhere (the
// Content-Security-Policy forbids it); page-specific code lives in its own file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // <time data-local> shows the instant in the viewer's own zone as a tooltip.
  document.querySelectorAll("time[data-local]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) el.title = when.toLocaleString();
  });
});
