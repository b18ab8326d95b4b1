// The data-centres page: draws the world map (d3-geo, topojson-client, world-atlas) under the
// regions, the live meetings' cascade links and the chosen meeting, and keeps the page's tables
// current by fetching /console/datacentres.json every few seconds (no page reload).
//
// The tables are the content; the map repeats them for the eye (its <svg> is role="img").
// Content-Security-Policy: no inline style anywhere, so colours and sizes are SVG presentation
// attributes set with setAttribute, never a style attribute.
"use strict";

(() => {
  const root = document.getElementById("datacentres");
  const svg = document.getElementById("map");
  if (!root || !svg) return;

  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 960;
  const HEIGHT = 500;
  const REFRESH_MS = 4000;
  const COLOUR = {
    idle: "#8a939e",
    used: "#0b5cad",
    busy: "#b45309",
    link: "#0b5cad",
    carried: "#c2410c",
    ink: "#1b1f24",
    halo: "#ffffff",
  };
  // labels of regions drawn close together (Europe) go where they do not cover each other
  const LABEL = { NL: ["middle", 0, -12], IE: ["end", -9, 4], DE: ["start", 9, 10] };

  let chosen = root.dataset.meeting || "";
  let projection = null;
  let geoPath = null;
  let linkLayer = null;
  let regionLayer = null;
  let timer = null;
  let mapProblem = "";

  // -- small helpers ---------------------------------------------------------------------------

  function svgEl(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (parent) parent.appendChild(node);
    return node;
  }

  function el(name, attrs, children) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === true) node.setAttribute(key, "");
      else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, String(value));
    }
    for (const child of children || []) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const number = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
  const percent = (load) => `${(Number(load || 0) * 100).toFixed(2)}%`;
  const when = (iso) => {
    if (!iso) return "—";
    const at = new Date(iso);
    return Number.isNaN(at.getTime()) ? iso : `${at.toISOString().slice(0, 16).replace("T", " ")} UTC`;
  };
  const countries = (list) => (list.length ? list.map((c) => `${c.country} ${c.count}`).join(", ") : null);

  function mapUrl(meeting) {
    return meeting ? `/console/datacentres?meeting=${encodeURIComponent(meeting)}` : "/console/datacentres";
  }

  // -- the map ---------------------------------------------------------------------------------

  async function drawWorld() {
    const response = await fetch(root.dataset.atlas, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the world atlas did not load (${response.status})`);
    const atlas = await response.json();
    const sphere = { type: "Sphere" };
    projection = d3.geoNaturalEarth1().fitExtent([[6, 6], [WIDTH - 6, HEIGHT - 6]], sphere);
    geoPath = d3.geoPath(projection);
    svg.replaceChildren();
    svgEl("path", { class: "sphere", d: geoPath(sphere) }, svg);
    svgEl("path", { class: "graticule", d: geoPath(d3.geoGraticule10()) }, svg);
    const land = svgEl("g", { class: "countries" }, svg);
    for (const feature of topojson.feature(atlas, atlas.objects.countries).features) {
      const d = geoPath(feature);
      if (d) svgEl("path", { class: "land", d, "data-country": feature.id || "" }, land);
    }
    linkLayer = svgEl("g", { class: "links" }, svg);
    regionLayer = svgEl("g", { class: "regions" }, svg);
  }

  function arc(regions, byCode) {
    const [a, b] = regions.map((code) => byCode.get(code));
    if (!a || !b) return null;
    return geoPath({
      type: "LineString",
      coordinates: [[a.longitude, a.latitude], [b.longitude, b.latitude]],
    });
  }

  function drawLinks(view, byCode) {
    linkLayer.replaceChildren();
    for (const link of view.links) {
      const d = arc(link.regions, byCode);
      if (!d) continue;
      svgEl("path", {
        class: "link",
        d,
        stroke: COLOUR.link,
        "stroke-width": Math.min(1.5 + link.meetings.length, 6),
        "stroke-opacity": 0.55,
        "data-link": link.regions.join("-"),
      }, linkLayer);
    }
    if (!view.chosen) return;
    for (const pair of view.chosen.links) {
      const d = arc(pair, byCode);
      if (!d) continue;
      svgEl("path", {
        class: "link chosen",
        d,
        stroke: COLOUR.carried,
        "stroke-width": 3.5,
        "stroke-dasharray": "8 4",
        "data-chosen-link": pair.join("-"),
      }, linkLayer);
    }
  }

  function regionShape(r, carried, keyRegion) {
    const [x, y] = projection([r.longitude, r.latitude]);
    // no node configured, or its node failed its health checks: nobody is placed there
    const down = !r.node || r.state === "down";
    // a region with no relay node cannot carry anyone (the API reports it full): a small ring
    const radius = !down ? Math.min(5 + 3 * Math.sqrt(r.participants || 0) + 20 * Math.sqrt(r.load || 0), 24) : 4;
    const fill = down ? COLOUR.halo : !r.in_use ? COLOUR.idle : (r.load || 0) >= 0.5 ? COLOUR.busy : COLOUR.used;
    const g = svgEl("g", {
      class: "region",
      transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
      "data-region": r.region,
      "data-in-use": r.in_use ? "true" : "false",
    });
    if (carried) g.setAttribute("data-carried", carried.has(r.region) ? "true" : "false");
    const meetings = r.meetings.length;
    g.setAttribute("data-state", r.state || (r.node ? "up" : "none"));
    svgEl("title", {}, g).textContent =
      `${r.region} ${r.name}: ${r.state === "down" ? "node down, " : ""}${r.participants} participants, ${meetings} live meeting${meetings === 1 ? "" : "s"}` +
      (carried && carried.has(r.region) ? ", carried the chosen meeting" : "");
    if (carried && carried.has(r.region)) {
      svgEl("circle", { r: radius + 5, fill: "none", stroke: COLOUR.carried, "stroke-width": 3 }, g);
    }
    if (r.region === keyRegion) {
      svgEl("circle", {
        r: radius + 10, fill: "none", stroke: COLOUR.carried, "stroke-width": 1.5, "stroke-dasharray": "3 2",
      }, g);
    }
    svgEl("circle", down
      ? { r: radius, fill, stroke: COLOUR.idle, "stroke-width": 1.5, "stroke-dasharray": "2 1.5" }
      : { r: radius.toFixed(1), fill, stroke: COLOUR.halo, "stroke-width": 1.2 }, g);
    const [anchor, dx, dy] = LABEL[r.region] || ["start", radius + 3, 4];
    const label = svgEl("text", {
      x: dx,
      y: dy,
      "text-anchor": anchor,
      fill: COLOUR.ink,
      stroke: COLOUR.halo,
      "stroke-width": 3,
      "paint-order": "stroke",
    }, g);
    label.textContent = r.region;
    return g;
  }

  function drawRegions(view) {
    const carried = view.chosen ? new Set(view.chosen.carried.map((c) => c.region)) : null;
    const keyRegion = view.chosen ? view.chosen.meeting.key_region : null;
    // regions in use and carried ones are drawn last, on top of idle ones
    const order = [...view.regions].sort(
      (a, b) => Number(a.in_use) - Number(b.in_use) || a.region.localeCompare(b.region),
    );
    regionLayer.replaceChildren(...order.map((r) => regionShape(r, carried, keyRegion)));
  }

  function drawMap(view) {
    if (!geoPath) return;
    const byCode = new Map(view.regions.map((r) => [r.region, r]));
    drawLinks(view, byCode);
    drawRegions(view);
  }

  // -- the tables ------------------------------------------------------------------------------

  function setCell(row, col, text) {
    const cell = row.querySelector(`[data-col="${col}"]`);
    if (cell && cell.textContent !== text) cell.textContent = text;
    return cell;
  }

  function updateRegions(view) {
    for (const r of view.regions) {
      const row = document.querySelector(`#regions tr[data-region="${r.region}"]`);
      if (!row) continue;
      const node = setCell(row, "node", !r.node ? "none configured" : r.state === "down" ? "down: failed its health checks" : "connected");
      if (node) node.setAttribute("data-state", r.state || "none");
      setCell(row, "participants", number(r.participants));
      setCell(row, "capacity", number(r.capacity));
      setCell(row, "load", percent(r.load));
      const cell = setCell(row, "meetings", String(r.meetings.length));
      if (cell) cell.setAttribute("data-meetings", r.meetings.join(" "));
      setCell(row, "in-use", r.in_use ? "yes" : "no");
    }
  }

  function updateLive(view) {
    const body = document.querySelector("#live tbody");
    if (body) {
      const rows = view.live.map((m) =>
        el("tr", { "data-meeting": m.id }, [
          el("th", { scope: "row" }, [
            el("a", { href: mapUrl(m.id), "data-choose": m.id }, [m.id]),
            el("br"),
            el("span", { class: "small" }, [m.topic]),
          ]),
          el("td", {}, [`${m.host} (${m.host_country})`]),
          el("td", {}, [countries(m.countries) || "none yet"]),
          el("td", {}, [m.regions.join(", ") || "none"]),
        ]),
      );
      if (!rows.length) rows.push(el("tr", { class: "empty" }, [el("td", { colspan: 4 }, ["No meeting is live."])]));
      body.replaceChildren(...rows);
    }
    const select = document.getElementById("meeting");
    if (select && document.activeElement !== select) {
      const options = [el("option", { value: "" }, ["none"])];
      for (const m of view.live) {
        options.push(el("option", { value: m.id, selected: m.id === chosen }, [`${m.id} · ${m.topic}`]));
      }
      const shown = view.chosen && view.chosen.meeting;
      if (shown && shown.status !== "live") {
        options.push(el("option", { value: shown.id, selected: true }, [`${shown.id} · ${shown.topic} (ended)`]));
      }
      select.replaceChildren(...options);
      select.value = chosen;
    }
  }

  function roleOf(c) {
    return [c.key_region ? "key region" : "", c.relay ? "relay" : ""].filter(Boolean).join(", ");
  }

  function updateChosen(view) {
    const section = document.getElementById("chosen");
    const legend = document.getElementById("legend-carried");
    if (legend) legend.hidden = !view.chosen;
    if (!section) return;
    if (!view.chosen) {
      section.hidden = true;
      section.replaceChildren();
      return;
    }
    const m = view.chosen.meeting;
    const facts = [
      ["Host", `${m.host} (${m.host_country})`],
      ["Status", el("span", { class: `tag tag-${m.status === "live" ? "active" : "ended"}` }, [m.status])],
      ["Allowed regions", m.allowed.join(", ")],
      ["Key region", m.key_region],
      ["Started", when(m.started)],
    ];
    if (m.ended) facts.push(["Ended", when(m.ended)]);
    const dl = el("dl", { class: "facts" });
    for (const [term, value] of facts) dl.append(el("dt", {}, [term]), el("dd", {}, [value]));
    const cols = [
      "participants", "bytes_in", "bytes_out", "frames_in", "frames_out", "media_bytes_in", "media_bytes_out", "keys",
    ];
    const rows = view.chosen.carried.map((c) =>
      el("tr", { "data-region": c.region }, [
        el("th", { scope: "row" }, [c.region]),
        el("td", {}, [roleOf(c)]),
        ...cols.map((col) => el("td", { class: "num", "data-col": col }, [number(c[col])])),
      ]),
    );
    if (!rows.length) {
      rows.push(el("tr", { class: "empty" }, [
        el("td", { colspan: 10 }, ["No region has carried anything for this meeting yet."]),
      ]));
    }
    const heads = [
      "Participants now", "Bytes in", "Bytes out", "Frames in", "Frames out", "Media bytes in", "Media bytes out",
      "Keys wrapped",
    ];
    const table = el("table", { id: "carried" }, [
      el("caption", {}, ["What each region node counted for this meeting (regions that carried nothing are left out)"]),
      el("thead", {}, [el("tr", {}, [
        el("th", { scope: "col" }, ["Region"]),
        el("th", { scope: "col" }, ["Role"]),
        ...heads.map((h) => el("th", { scope: "col", class: "num" }, [h])),
      ])]),
      el("tbody", {}, rows),
    ]);
    const unanswered = view.chosen.unanswered.map((u) => u.error).join("; ");
    section.replaceChildren(
      el("h2", { id: "chosen-heading" }, ["Meeting ", el("code", {}, [m.id]), `: ${m.topic}`]),
      dl,
      table,
      el("p", { id: "unanswered", class: "warning", hidden: !unanswered }, [unanswered]),
      el("p", { class: "small" }, [
        el("a", { href: mapUrl(""), "data-choose": "" }, ["Clear the chosen meeting"]),
        " · ",
        el("a", { href: "/console/meetings" }, ["All meetings"]),
      ]),
    );
    section.hidden = false;
  }

  function showStatus(problem, at) {
    // the figures' instant is not a live region (it would be read out every few seconds); a
    // problem is, and is cleared once a refresh works again
    const alert = document.getElementById("refresh-problem");
    const text = problem || mapProblem;
    if (alert && alert.textContent !== text) alert.textContent = text;
    const status = document.getElementById("refreshed");
    if (!status || !at) return;
    const time = status.querySelector("time");
    if (time && time.getAttribute("datetime") !== at) {
      time.setAttribute("datetime", at);
      time.textContent = when(at);
    }
  }

  // -- refreshing ------------------------------------------------------------------------------

  async function refresh() {
    clearTimeout(timer);
    const asked = chosen;
    const url = `${root.dataset.source}${asked ? `?meeting=${encodeURIComponent(asked)}` : ""}`;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
      const type = response.headers.get("content-type") || "";
      if (!response.ok || !type.includes("application/json")) {
        throw new Error(response.ok ? "signed out?" : `the server answered ${response.status}`);
      }
      const view = await response.json();
      if (asked === chosen) {
        updateRegions(view);
        updateLive(view);
        updateChosen(view);
        drawMap(view);
        showStatus(null, view.at);
      }
    } catch (err) {
      showStatus(`Could not refresh the figures: ${err.message}. Trying again shortly.`, null);
    } finally {
      timer = setTimeout(refresh, REFRESH_MS);
    }
  }

  function choose(meeting, push) {
    chosen = meeting;
    root.dataset.meeting = meeting;
    document.title = `${meeting ? `Data centres: meeting ${meeting}` : "Data centres"} · Meridian`;
    if (push) history.pushState({ meeting }, "", mapUrl(meeting));
    refresh();
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-choose]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    choose(link.getAttribute("data-choose"), true);
  });
  const form = document.getElementById("choose");
  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      choose(document.getElementById("meeting").value, true);
    });
  }
  window.addEventListener("popstate", () => {
    choose(new URLSearchParams(window.location.search).get("meeting") || "", false);
  });

  drawWorld()
    .then(() => refresh())
    .catch((err) => {
      mapProblem = `The map could not be drawn: ${err.message}. The tables are current.`;
      showStatus(null, null);
      refresh();
    });
})();
