// The meeting page: a participant of a live meeting, end-to-end encrypted, in the browser.
//
// It follows docs/data-plane.md as meridian.client.Participant does:
//   1. an X25519 key pair made here (WebCrypto; the private key cannot be exported);
//   2. signalling (same origin): {"type": "join", "name", "public_key", "invite"} → "refused" or
//      "admitted" (first "waiting" while a host decides, when the meeting has a waiting room); the
//      invite is the join link's fragment (#k=…), which the browser never sends to any server;
//   3. the meeting key, wrapped to our public key by the key region's key server, is opened here:
//      ECDH with the ephemeral `epk`, HKDF-SHA256 (salt epk || our public key, info
//      "meridian key wrap v1"), AES-256-GCM with the canonical JSON of the key's context as AAD;
//   4. the relay of our data centre, with the grant; after its "ready", "connected" on signalling;
//   5. chat lines sealed as MF1 frames with our sender key (HKDF of the meeting key), opened with
//      each sender's key; key rotations, joins, leaves, removal and the end arrive on signalling;
//      "paused" (the key could not be rotated) stops sending until "resumed";
//   6. a host (the host account's own user) hears "waiting_room" and admits or refuses each guest.
// Nothing secret and nothing decrypted is ever sent anywhere: only sealed frames leave the page.
//
// The meetings list also uses this file for its "Copy" buttons (data-copy="<input id>").
"use strict";

(() => {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const MAGIC = encoder.encode("MF1");
  const CHAT = 1;
  const KEEP_EPOCHS = 4; // epochs kept for frames still in flight after a rotation
  const EARLY_FRAMES = 256; // frames of an epoch whose key has not arrived yet
  const CLOSE_REMOVED = 4451;

  // The invite of the join link: `#k=…` (preferred: never sent to a server) or `?k=…`.
  function linkInvite() {
    const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
    return fragment.get("k") || new URLSearchParams(location.search).get("k") || null;
  }

  // -- bytes -------------------------------------------------------------------------------------

  function b64url(bytes) {
    let text = "";
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function fromB64url(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
      throw new Error("malformed base64url from the server");
    }
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  // -- keys (meridian.keys.wrap and meridian.keys.media) -------------------------------------------

  // The associated data of a wrapped key: its context as canonical JSON (keys sorted, no spaces;
  // the literal below lists them in sorted order, which JSON.stringify keeps).
  function contextAad(meeting, participant, region, epoch) {
    return encoder.encode(JSON.stringify({ epoch, meeting, participant, region }));
  }

  async function unwrapMeetingKey(own, wrapped, context) {
    const epk = fromB64url(wrapped.epk);
    const nonce = fromB64url(wrapped.nonce);
    const ct = fromB64url(wrapped.ct);
    const peer = await crypto.subtle.importKey("raw", epk, { name: "X25519" }, false, []);
    const shared = await crypto.subtle.deriveBits({ name: "X25519", public: peer }, own.privateKey, 256);
    const material = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
    const wrapping = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: concat(epk, own.publicRaw), info: encoder.encode("meridian key wrap v1") },
      material,
      { name: "AES-GCM", length: 256 },
      false,
      ["decrypt"],
    );
    const raw = new Uint8Array(
      await crypto.subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: context }, wrapping, ct),
    );
    // held only as a key that derives sender keys: its bytes are not kept
    const meetingKey = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
    raw.fill(0);
    return meetingKey;
  }

  class SenderKeys {
    constructor(meeting) {
      this.meeting = meeting;
      this.epochs = new Map(); // epoch → meeting key (HKDF CryptoKey)
      this.senders = new Map(); // "epoch|sender" → AES-GCM CryptoKey
    }

    get latest() {
      return this.epochs.size ? Math.max(...this.epochs.keys()) : null;
    }

    add(epoch, meetingKey) {
      this.epochs.set(epoch, meetingKey);
      const kept = [...this.epochs.keys()].sort((a, b) => a - b).slice(-KEEP_EPOCHS);
      for (const e of [...this.epochs.keys()]) if (!kept.includes(e)) this.epochs.delete(e);
      for (const k of [...this.senders.keys()]) {
        const e = Number(k.split("|", 1)[0]);
        if (!kept.includes(e) || e === epoch) this.senders.delete(k);
      }
    }

    async key(epoch, sender) {
      const id = `${epoch}|${sender}`;
      const cached = this.senders.get(id);
      if (cached) return cached;
      const meetingKey = this.epochs.get(epoch);
      if (!meetingKey) return null;
      const key = await crypto.subtle.deriveKey(
        {
          name: "HKDF",
          hash: "SHA-256",
          salt: new Uint8Array(0), // no salt: HKDF's zero salt, as `salt=None`
          info: encoder.encode(`meridian sender key v1|${this.meeting}|${sender}|${epoch}`),
        },
        meetingKey,
        { name: "AES-GCM", length: 256 },
        false,
        ["encrypt", "decrypt"],
      );
      this.senders.set(id, key);
      return key;
    }

    async seal(sender, kind, payload) {
      const epoch = this.latest;
      const key = epoch === null ? null : await this.key(epoch, sender);
      if (!key) throw new Error("no meeting key yet");
      const senderBytes = encoder.encode(sender);
      const epochBytes = new Uint8Array(4);
      new DataView(epochBytes.buffer).setUint32(0, epoch, false);
      const header = concat(MAGIC, Uint8Array.of(kind), epochBytes, Uint8Array.of(senderBytes.length), senderBytes);
      const nonce = crypto.getRandomValues(new Uint8Array(12));
      const aad = concat(header, encoder.encode(this.meeting));
      const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, payload));
      return concat(header, nonce, ct);
    }

    // {kind, epoch, sender, end}: the cleartext header of a frame; null if malformed
    static header(frame) {
      if (frame.length < 9 || MAGIC.some((b, i) => frame[i] !== b)) return null;
      const kind = frame[3];
      const epoch = new DataView(frame.buffer, frame.byteOffset).getUint32(4, false);
      const end = 9 + frame[8];
      if (frame.length < end + 12 + 16 || end === 9) return null;
      let sender;
      try {
        sender = new TextDecoder("utf-8", { fatal: true }).decode(frame.subarray(9, end));
      } catch {
        return null;
      }
      return { kind, epoch, sender, end };
    }

    // {header, payload} or null (the frame does not open: wrong key, epoch, meeting or bytes)
    async open(frame, header) {
      const key = await this.key(header.epoch, header.sender);
      if (!key) return null;
      const aad = concat(frame.subarray(0, header.end), encoder.encode(this.meeting));
      try {
        const payload = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: frame.subarray(header.end, header.end + 12), additionalData: aad },
          key,
          frame.subarray(header.end + 12),
        );
        return new Uint8Array(payload);
      } catch {
        return null;
      }
    }
  }

  // -- the page ----------------------------------------------------------------------------------

  function wsUrl(path) {
    return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${path}`;
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function nextMessage(socket) {
    return new Promise((resolve, reject) => {
      const onMessage = (event) => {
        cleanup();
        resolve(event.data);
      };
      const onClose = (event) => {
        cleanup();
        reject(Object.assign(new Error(event.reason || `the connection closed (code ${event.code})`), { code: event.code }));
      };
      const cleanup = () => {
        socket.removeEventListener("message", onMessage);
        socket.removeEventListener("close", onClose);
      };
      socket.addEventListener("message", onMessage);
      socket.addEventListener("close", onClose);
    });
  }

  function opened(socket) {
    return new Promise((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener(
        "close",
        (event) => reject(new Error(event.reason || `could not connect (code ${event.code})`)),
        { once: true },
      );
    });
  }

  class MeetingPage {
    constructor(root) {
      this.root = root;
      this.meeting = root.dataset.meeting;
      this.signalPath = root.dataset.signal;
      this.$ = (id) => document.getElementById(id);
      this.names = new Map(); // participant id → name (kept after they leave, for old lines)
      this.present = new Set(); // participant ids connected now
      this.keys = new SenderKeys(this.meeting);
      this.early = [];
      this.ended = null;
      this.signal = null;
      this.relay = null;
      this.own = null;
      this.me = null;
      this.name = "";
      this.invite = linkInvite();
      this.paused = null;
      this.queue = Promise.resolve(); // frames and keys are handled one at a time, in order
      this.$("join").addEventListener("submit", (event) => {
        event.preventDefault();
        this.join().catch((error) => this.fail(error.message || String(error)));
      });
      this.$("say").addEventListener("submit", (event) => {
        event.preventDefault();
        this.say().catch((error) => this.status(`could not send: ${error.message}`));
      });
      this.$("leave").addEventListener("click", () => this.leave("you left the meeting"));
    }

    status(text) {
      this.$("status").textContent = text;
    }

    // Run `task` after every task queued before it; its own promise (which may reject) is returned.
    serial(task) {
      const run = this.queue.then(task);
      this.queue = run.catch((error) => this.status(error.message || String(error)));
      return run;
    }

    fail(message) {
      const box = this.$("refusal");
      box.replaceChildren(el("p", `Could not join: ${message}`, "error"));
      box.hidden = false;
      this.status("Not joined.");
      this.closeAll();
      if (!this.me) this.$("join").querySelector("button").disabled = false;
    }

    // -- joining -------------------------------------------------------------------------------

    async join() {
      const name = this.$("name").value.trim();
      if (!name) return;
      this.name = name;
      this.$("refusal").hidden = true;
      this.$("join").querySelector("button").disabled = true;
      this.status("Making a key pair…");
      const pair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
      const publicRaw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
      this.own = { privateKey: pair.privateKey, publicRaw };

      this.status("Asking to join…");
      // the demo's simulated network (`meridian serve --demo` only): join as if from a place
      const place = this.$("demo-from") ? this.$("demo-from").value : "";
      const path = place ? `${this.signalPath}?from=${encodeURIComponent(place)}` : this.signalPath;
      const signal = new WebSocket(wsUrl(path));
      this.signal = signal;
      await opened(signal);
      // The first message answers the join (after any "waiting"); every later one (a rotation
      // may come at once) is queued behind the admission, so no key is applied out of order or
      // missed: the listener is added in the same turn the answer is read.
      const join = { type: "join", name, public_key: b64url(publicRaw) };
      if (this.invite) join.invite = this.invite;
      signal.send(JSON.stringify(join));
      let answer = JSON.parse(await nextMessage(signal));
      while (answer.type === "waiting") {
        this.status("Waiting for the host to let you in…");
        answer = JSON.parse(await nextMessage(signal));
      }
      signal.addEventListener("message", (event) => {
        this.serial(() => this.onSignal(event.data));
      });
      if (answer.type === "refused") {
        this.refused(answer);
        return;
      }
      if (answer.type !== "admitted") throw new Error(`the control plane answered \`${answer.type}\` to a join`);
      await this.serial(() => this.admitted(answer));
      signal.addEventListener("close", (event) => this.onClosed("control plane", event));

      this.status(`Connecting to the relay in ${answer.dc}…`);
      const relay = new WebSocket(answer.relay);
      relay.binaryType = "arraybuffer";
      this.relay = relay;
      await opened(relay);
      relay.send(JSON.stringify({ grant: answer.grant }));
      const ready = JSON.parse(await nextMessage(relay));
      if (ready.type !== "ready") throw new Error(`the relay answered \`${ready.type}\` to the grant`);
      relay.addEventListener("message", (event) => {
        if (typeof event.data !== "string") this.serial(() => this.onFrame(new Uint8Array(event.data)));
      });
      relay.addEventListener("close", (event) => this.onClosed("relay", event));
      signal.send(JSON.stringify({ type: "connected" }));
      this.$("join").hidden = true;
      this.status(`Connected through the relay in ${ready.dc}: messages are end-to-end encrypted.`);
      this.$("line").focus();
    }

    refused(answer) {
      const box = this.$("refusal");
      box.replaceChildren(el("p", `Refused: ${answer.message || "the control plane refused this join"}`, "error"));
      const decision = answer.decision || {};
      if (Array.isArray(decision.reasons) && decision.reasons.length) {
        const list = el("ul", null, "reasons");
        for (const r of decision.reasons) {
          const item = el("li");
          item.append(el("span", r.effect, `tag tag-${r.effect}`), " ");
          item.append(el("code", r.rule), ` (${r.jurisdiction}): ${r.message}`);
          list.append(item);
        }
        box.append(list);
      }
      const partners = decision.alternatives && decision.alternatives.partners;
      if (Array.isArray(partners) && partners.length) {
        box.append(el("p", `Partners authorised here: ${partners.map((p) => p.name).join(", ")}`));
      }
      if (decision.location && decision.location.country) {
        box.append(el("p", `Where you were judged to be: ${decision.location.country}`, "muted small"));
      }
      box.hidden = false;
      this.$("join").querySelector("button").disabled = false;
      this.status("Not joined.");
      this.closeAll();
    }

    async admitted(answer) {
      this.me = answer.participant;
      this.names.set(this.me, this.name);
      await this.addKey(answer.key);
      this.showAdmission(answer);
      for (const entry of answer.roster || []) this.joined(entry.participant, entry.name);
    }

    showAdmission(answer) {
      this.$("me").textContent = `${this.name} (${answer.participant})`;
      this.$("dc").textContent = answer.dc;
      this.$("key-region").textContent = answer.key.region;
      this.$("epoch").textContent = String(answer.key.epoch);
      this.$("regions").textContent = (answer.meeting_regions || []).join(", ") || "—";
      const notices = this.$("notices");
      notices.replaceChildren(...(answer.notices || []).map((n) => el("li", n, "warning")));
      notices.hidden = !(answer.notices || []).length;
      this.$("room").hidden = false;
      this.renderRoster();
    }

    async addKey(key) {
      const context = contextAad(this.meeting, this.me, String(key.region), Number(key.epoch));
      const meetingKey = await unwrapMeetingKey(this.own, key.wrapped, context);
      this.keys.add(Number(key.epoch), meetingKey);
      this.$("epoch").textContent = String(this.keys.latest);
      const held = this.early;
      this.early = [];
      for (const frame of held) await this.onFrame(frame);
    }

    // -- signalling ----------------------------------------------------------------------------

    async onSignal(text) {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      switch (message.type) {
        case "key":
          await this.addKey(message);
          this.line(null, `The meeting key changed (epoch ${message.epoch}).`);
          break;
        case "roster":
          for (const entry of message.participants || []) this.joined(entry.participant, entry.name);
          break;
        case "joined":
          this.joined(message.participant, message.name);
          this.line(null, `${message.name} joined.`);
          break;
        case "left":
          if (this.present.delete(message.participant)) {
            this.line(null, `${this.nameOf(message.participant)} left.`);
            this.renderRoster();
          }
          break;
        case "removed":
          this.removed(message.reason || "no reason given");
          break;
        case "ended":
          this.end("The meeting ended.");
          break;
        case "paused":
          this.pause(message.reason || "the meeting key could not be rotated");
          break;
        case "resumed":
          this.resume();
          break;
        case "waiting_room":
          this.waitingRoom(message.waiting || []);
          break;
        case "error":
          this.status(message.message || "the control plane refused that");
          break;
        default:
          break;
      }
    }

    joined(participant, name) {
      this.names.set(participant, String(name || participant));
      this.present.add(participant);
      this.renderRoster();
      // lines that came before the name did (a frame can outrun its sender's `joined`)
      for (const from of document.querySelectorAll(`#chat .from[data-sender="${CSS.escape(participant)}"]`)) {
        from.textContent = this.nameOf(participant);
      }
    }

    // The key could not be rotated after someone left: nothing is sent until it is.
    pause(reason) {
      this.paused = reason;
      this.status(`Paused: ${reason}. Nothing is sent until the key is rotated.`);
      this.line(null, `The meeting is paused: ${reason}.`);
      this.$("say").querySelector("button").disabled = true;
      this.$("line").disabled = true;
    }

    resume() {
      if (!this.paused || this.ended) return;
      this.paused = null;
      this.status("The meeting key was rotated: messages are end-to-end encrypted.");
      this.line(null, "The meeting resumed.");
      this.$("say").querySelector("button").disabled = false;
      this.$("line").disabled = false;
    }

    // A host's view of the waiting room: each guest with Admit and Refuse.
    waitingRoom(waiting) {
      const section = this.$("waiting-room");
      const list = this.$("waiting");
      const items = waiting.map((guest) => {
        const item = el("li");
        item.dataset.participant = guest.participant;
        item.append(el("span", guest.name, "name"), " ");
        for (const [label, type] of [["Admit", "admit"], ["Refuse", "refuse"]]) {
          const button = el("button", label, type === "admit" ? "" : "secondary");
          button.type = "button";
          button.setAttribute("aria-label", `${label} ${guest.name}`);
          button.addEventListener("click", () => {
            button.disabled = true;
            this.signal.send(JSON.stringify({ type, participant: guest.participant }));
          });
          item.append(button, " ");
        }
        return item;
      });
      list.replaceChildren(...items);
      section.hidden = waiting.length === 0;
    }

    nameOf(participant) {
      return this.names.get(participant) || participant;
    }

    renderRoster() {
      const items = [el("li", `${this.name} (you)`)];
      for (const p of this.present) items.push(el("li", this.nameOf(p)));
      this.$("roster").replaceChildren(...items);
    }

    onClosed(what, event) {
      if (this.ended) return;
      if (event.code === CLOSE_REMOVED) {
        this.removed(event.reason || "no reason given");
      } else {
        this.end(`The ${what} closed the connection (code ${event.code}${event.reason ? `: ${event.reason}` : ""}).`);
      }
    }

    removed(reason) {
      const first = !this.ended || !this.ended.startsWith("removed");
      // a close reason may be cut short (123 bytes): the `removed` message has all of it
      if (!first && reason.length <= this.ended.length - "removed from the meeting: ".length) return;
      this.ended = `removed from the meeting: ${reason}`;
      const box = this.$("refusal");
      box.replaceChildren(el("p", `You were removed from the meeting: ${reason}`, "error"));
      box.hidden = false;
      this.status("Removed from the meeting.");
      // the relay may close first, with the reason cut short: signalling still has the `removed`
      // message to deliver, and the control plane closes that socket itself
      if (this.relay && this.relay.readyState <= WebSocket.OPEN) this.relay.close(1000);
      this.disable();
    }

    end(text) {
      if (this.ended) return;
      this.ended = text;
      this.status(text);
      this.line(null, text);
      this.closeAll();
      this.disable();
    }

    disable() {
      this.$("say").querySelector("button").disabled = true;
      this.$("line").disabled = true;
      this.$("leave").disabled = true;
    }

    closeAll() {
      for (const socket of [this.relay, this.signal]) {
        if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
      }
    }

    leave(text) {
      this.end(text.charAt(0).toUpperCase() + text.slice(1) + ".");
    }

    // -- frames --------------------------------------------------------------------------------

    async onFrame(frame) {
      const header = SenderKeys.header(frame);
      if (!header) return;
      const payload = await this.keys.open(frame, header);
      if (payload === null) {
        const latest = this.keys.latest;
        if (latest !== null && header.epoch > latest && this.early.length < EARLY_FRAMES) {
          this.early.push(frame); // its key may be on its way
        }
        return;
      }
      if (header.kind === CHAT) this.line(header.sender, decoder.decode(payload));
    }

    async say() {
      const input = this.$("line");
      const text = input.value;
      if (!text.trim() || !this.relay || this.ended || this.paused) return;
      const frame = await this.keys.seal(this.me, CHAT, encoder.encode(text));
      this.relay.send(frame);
      input.value = "";
      this.line(this.me, text);
    }

    line(sender, text) {
      const item = el("li");
      if (sender === null) {
        item.className = "event";
        item.textContent = text;
      } else {
        const from = el("span", this.nameOf(sender), "from");
        from.dataset.sender = sender;
        item.append(from, ": ", el("span", text, "text"));
        if (sender === this.me) item.classList.add("own");
      }
      const chat = this.$("chat");
      chat.append(item);
      chat.scrollTop = chat.scrollHeight;
    }
  }

  // -- copying join links (the meetings list) ------------------------------------------------------

  function copyButtons() {
    for (const button of document.querySelectorAll("button[data-copy]")) {
      button.addEventListener("click", async () => {
        const field = document.getElementById(button.dataset.copy);
        if (!field) return;
        field.select();
        const label = button.firstChild;
        try {
          await navigator.clipboard.writeText(field.value);
          label.textContent = "Copied";
        } catch {
          label.textContent = "Selected: press Ctrl+C";
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    copyButtons();
    const root = document.getElementById("meeting");
    if (root) new MeetingPage(root);
  });
})();
