// The inclusion-proof page: the browser checks the audit path itself (RFC 9162 §2.1.3.2) with
// Web Crypto, trusting nothing the server computed but the hashes shown on the page. The data
// comes from the data-* attributes of #browser-check (no inline script: the CSP forbids it).
"use strict";

(() => {
  const fromB64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  const toB64 = (bytes) => btoa(String.fromCharCode(...bytes));

  async function nodeHash(left, right) {
    const data = new Uint8Array(65);
    data[0] = 1;
    data.set(left, 1);
    data.set(right, 33);
    return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  }

  function step(list, text, hash) {
    const li = document.createElement("li");
    li.append(text + " ");
    const code = document.createElement("code");
    code.className = "hash";
    code.textContent = toB64(hash);
    li.append(code);
    list.append(li);
  }

  async function check(box) {
    const result = box.querySelector("#browser-result");
    const steps = box.querySelector("#browser-steps");
    if (!window.crypto || !crypto.subtle) {
      result.textContent = "Your browser cannot hash here (Web Crypto needs a secure context).";
      return;
    }
    const proof = box.dataset.proof ? box.dataset.proof.split(" ").map(fromB64) : [];
    let fn = BigInt(box.dataset.index);
    let sn = BigInt(box.dataset.size) - 1n;
    let r = fromB64(box.dataset.leaf);
    step(steps, "leaf hash:", r);
    for (const p of proof) {
      if (sn === 0n) {
        result.textContent = "Does not verify: the path has more hashes than the tree has levels.";
        result.className = "error";
        return;
      }
      if (fn & 1n || fn === sn) {
        r = await nodeHash(p, r);
        step(steps, "with the sibling on the left:", r);
        if (!(fn & 1n)) {
          while (fn && !(fn & 1n)) {
            fn >>= 1n;
            sn >>= 1n;
          }
        }
      } else {
        r = await nodeHash(r, p);
        step(steps, "with the sibling on the right:", r);
      }
      fn >>= 1n;
      sn >>= 1n;
    }
    const ok = sn === 0n && toB64(r) === box.dataset.root;
    result.textContent = ok
      ? "Verified by your browser: the path leads to the root " + box.dataset.root + "."
      : "Does not verify in your browser: the path leads to " + toB64(r) + ", not " + box.dataset.root + ".";
    result.className = ok ? "ok" : "error";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const box = document.getElementById("browser-check");
    if (box) {
      check(box).catch((err) => {
        box.querySelector("#browser-result").textContent = "Your browser could not check: " + err;
      });
    }
  });
})();
