// The ended meeting's page: its residency receipt, checked in this page (docs/audit.md,
// "Meeting residency receipts"), as `meridian receipt verify` checks it:
//   1. the checkpoint note's signature by the log's key (Ed25519, WebCrypto), and its size and root;
//   2. each entry's RFC 9162 inclusion proof (SHA-256, WebCrypto) against that root;
//   3. that every entry is about this meeting, that the seal (`meeting.receipt`) is there once and
//      every entry it lists is present;
//   4. each region node's statement of what it carried, signed by that node's own key;
//   5. then, from those checked entries and statements only, which regions carried the meeting
//      and which gave its keys (and that the receipt's own summary says the same).
// The keys come from this service (the section's data-log-key and data-node-keys); a check that
// does not trust the service is the CLI's, with keys obtained another way.
"use strict";

(() => {
  const section = document.getElementById("receipt");
  if (!section) {
    return;
  }
  const result = document.getElementById("receipt-result");
  const encoder = new TextEncoder();
  const SEAL = "meeting.receipt";

  const fromB64 = (text) => {
    if (typeof text !== "string") {
      throw new Error("a hash or key is not base64 text");
    }
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  };
  const fromB64url = (text) =>
    fromB64(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  const concat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  };
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
  const sha256 = async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  const ed25519 = (raw) => crypto.subtle.importKey("raw", raw, { name: "Ed25519" }, false, ["verify"]);
  const verifies = async (raw, signature, data) =>
    crypto.subtle.verify({ name: "Ed25519" }, await ed25519(raw), signature, data);
  const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

  // <name>+<8 hex key id>+<base64(0x01 || key)>
  const logKey = (vkey) => {
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    const raw = fromB64(vkey.slice(second + 1));
    if (first < 1 || second < 0 || raw.length !== 33 || raw[0] !== 1) {
      throw new Error("the log key is malformed");
    }
    return { name: vkey.slice(0, first), id: vkey.slice(first + 1, second), key: raw.slice(1) };
  };

  // A C2SP signed note: the text ends at the last blank line, signature lines follow.
  const openCheckpoint = async (note, trusted) => {
    if (typeof note !== "string") {
      throw new Error("the receipt has no checkpoint");
    }
    const split = note.lastIndexOf("\n\n");
    const text = note.slice(0, split + 1);
    let signed = false;
    for (const line of note.slice(split + 2).split("\n")) {
      if (!line.startsWith("— ")) {
        continue;
      }
      const [name, encoded] = line.slice(2).split(" ");
      const raw = fromB64(encoded);
      if (name !== trusted.name || hex(raw.slice(0, 4)) !== trusted.id) {
        continue; // another key's line (a witness's cosignature)
      }
      if (!(await verifies(trusted.key, raw.slice(4), encoder.encode(text)))) {
        throw new Error("the checkpoint's signature does not verify with the log key");
      }
      signed = true;
    }
    if (!signed) {
      throw new Error("the checkpoint carries no signature by the log key");
    }
    const [origin, size, root] = text.split("\n");
    if (origin !== trusted.name || !/^[0-9]+$/.test(size)) {
      throw new Error("the checkpoint is not this log's");
    }
    return { size: Number(size), root: fromB64(root) };
  };

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to from a leaf.
  const rootFrom = async (leaf, index, size, proof) => {
    if (!(index >= 0 && index < size)) {
      throw new Error(`entry ${index} is outside the checkpoint's tree`);
    }
    let fn = index;
    let sn = size - 1;
    let r = leaf;
    for (const p of proof) {
      if (sn === 0) {
        throw new Error("the proof has more hashes than the tree has levels");
      }
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat([1], p, r));
        while (fn !== 0 && fn % 2 === 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      } else {
        r = await sha256(concat([1], r, p));
      }
      fn = Math.floor(fn / 2);
      sn = Math.floor(sn / 2);
    }
    if (sn !== 0) {
      throw new Error("the proof has fewer hashes than the tree has levels");
    }
    return r;
  };

  const carriedSomething = (counters) =>
    Object.entries(counters).some(([name, n]) => name !== "keys" && name !== "participants" && n > 0);

  const check = async (receipt, trusted, nodeKeys) => {
    if (!receipt || receipt.format !== "meridian-receipt/1" || !Array.isArray(receipt.entries)) {
      throw new Error("this is not a receipt");
    }
    const meeting = receipt.meeting;
    const checkpoint = await openCheckpoint(receipt.log && receipt.log.checkpoint, trusted);
    const entries = new Map();
    for (const item of receipt.entries) {
      const leaf = await sha256(concat([0], encoder.encode(item.entry)));
      const root = await rootFrom(leaf, item.index, checkpoint.size, item.proof.map(fromB64));
      if (!same(root, checkpoint.root)) {
        throw new Error(`entry ${item.index} is not in the signed log: its proof leads to another root`);
      }
      const entry = JSON.parse(item.entry);
      if (!entry.subject || entry.subject.kind !== "meeting" || entry.subject.id !== meeting) {
        throw new Error(`entry ${item.index} is not about this meeting`);
      }
      entries.set(item.index, entry);
    }
    const seals = [...entries.values()].filter((e) => e.action === SEAL);
    if (seals.length !== 1) {
      throw new Error(`the receipt holds ${seals.length} seals of the meeting, not one`);
    }
    const seal = seals[0].details;
    for (const index of seal.entries) {
      if (!entries.has(index)) {
        throw new Error(`entry ${index}, listed by the seal, is missing from the receipt`);
      }
    }
    const carried = new Set();
    const keys = new Set();
    let keyRegion = null;
    for (const entry of entries.values()) {
      if (entry.action === "meeting.create") {
        keyRegion = entry.details.key_region;
      } else if (entry.action === "meeting.join" && entry.details.decision === "allow") {
        carried.add(entry.details.dc);
        keys.add(null); // someone was keyed: the meeting's key region (below)
      }
    }
    if (keys.delete(null) && keyRegion) {
      keys.add(keyRegion);
    }
    for (const [region, node] of Object.entries(seal.nodes)) {
      if (typeof node.statement !== "string") {
        throw new Error(`node ${region} gave no statement: where the meeting went cannot be shown`);
      }
      if (!nodeKeys[region]) {
        throw new Error(`this page has no key for node ${region}`);
      }
      const good = await verifies(
        fromB64url(nodeKeys[region]),
        fromB64url(node.signature),
        encoder.encode(node.statement),
      );
      if (!good) {
        throw new Error(`node ${region}'s statement is not signed by that node's key`);
      }
      const statement = JSON.parse(node.statement);
      if (statement.region !== region || statement.meeting !== meeting) {
        throw new Error(`node ${region}'s statement is of another node or meeting`);
      }
      if (carriedSomething(statement.counters)) {
        carried.add(region);
      }
      if (statement.counters.keys > 0) {
        keys.add(region);
      }
    }
    for (const region of carried) {
      if (!(region in seal.nodes)) {
        throw new Error(`region ${region} carried participants but its node has no statement`);
      }
    }
    const where = { carried: [...carried].sort(), keys: [...keys].sort() };
    const summary = receipt.summary || {};
    if (
      JSON.stringify(summary.carried_in) !== JSON.stringify(where.carried) ||
      JSON.stringify(summary.keys_from) !== JSON.stringify(where.keys)
    ) {
      throw new Error("the receipt's summary is not what its signed entries say");
    }
    return where;
  };

  const show = (text, ok) => {
    result.textContent = text;
    result.classList.toggle("verified", ok);
    result.classList.toggle("error", !ok);
    section.dataset.verified = ok ? "yes" : "no";
  };

  const run = async () => {
    try {
      const trusted = logKey(section.dataset.logKey || "");
      const nodeKeys = JSON.parse(section.dataset.nodeKeys || "{}");
      const response = await fetch(section.dataset.receipt, { credentials: "same-origin" });
      if (!response.ok) {
        throw new Error(`the receipt could not be fetched (status ${response.status})`);
      }
      const where = await check(await response.json(), trusted, nodeKeys);
      const carried = where.carried.join(", ") || "no region";
      const keys = where.keys.join(", ") || "no region";
      show(`verified: carried only in ${carried}; keys only from ${keys}`, true);
    } catch (error) {
      show(`not verified: ${error.message}`, false);
    }
  };

  run();
})();
