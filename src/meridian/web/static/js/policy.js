// The bundle page: a problem's "line N" link selects that line in the editor (without this
// script the link still moves the focus to the editor). No inline script: the CSP forbids it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const editor = document.getElementById("bundle-yaml");
  if (!editor) return;
  document.querySelectorAll("a[data-line]").forEach((link) => {
    link.addEventListener("click", (event) => {
      const line = Number.parseInt(link.dataset.line, 10);
      if (!Number.isFinite(line) || line < 1) return;
      event.preventDefault();
      const lines = editor.value.split("\n");
      let start = 0;
      for (let i = 0; i < line - 1 && i < lines.length; i += 1) start += lines[i].length + 1;
      const end = start + (lines[line - 1] || "").length;
      editor.focus();
      editor.setSelectionRange(start, end);
      // bring the line into view: its share of the text's height
      const lineHeight = editor.scrollHeight / Math.max(lines.length, 1);
      editor.scrollTop = Math.max(0, (line - 4) * lineHeight);
    });
  });
});
