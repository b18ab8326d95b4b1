// The meeting page: a participant of a live meeting, end-to-end encrypted, in the browser.
//
// It follows docs/data-plane.md as meridian.client.Participant does:
//   1. an X25519 key pair and an Ed25519 signing key pair made here (WebCrypto; neither private
//      key can be exported);
//   2. signalling (same origin): {"type": "join", "name", "public_key", "signing_key", "invite"} →
//      "refused" or "admitted" (first "waiting" while a host decides, when the meeting has a
//      waiting room; the invite is the join link's fragment (#k=…), which the browser never sends
//      to any server); "admitted" carries the roster the control plane signs (`signed_roster`, an
//      EdDSA JWT) and the key it is checked with (`roster_key`): participant id → name, signing key;
//   3. the meeting key, wrapped to our public key by the key region's key server, is opened here:
//      ECDH with the ephemeral `epk`, HKDF-SHA256 (salt epk || our public key, info
//      "meridian key wrap v1"), AES-256-GCM with the canonical JSON of the key's context as AAD;
//   4. the relay of our data centre, with the grant; after its "ready", "connected" on signalling;
//   5. chat lines sealed as MF2 frames with our sender key (HKDF of the meeting key) and signed with
//      our signing key; each frame received is checked (its epoch current or the previous one
//      within GRACE_MS, its sender in the signed roster, its signature by that sender's key)
//      before it is opened, and what is dropped is counted on the page; key rotations, rosters,
//      joins, leaves, removal and the end arrive on signalling, as do a plan's time warning
//      and `region_down` (this page's relay node died: join again); "paused" (the key could not
//      be rotated) stops sending until "resumed";
//   6. a host (the host account's own user) hears "waiting_room" and admits or refuses each guest;
//   7. the call (camera, microphone: static/js/media.js) seals its chunks with the same keys as
//      chat, through `mediaHost()`; media frames are checked here like chat frames, then handed
//      to it, as are rotations, joins, leaves and the end of the meeting.
//   Once out of the meeting (removed, ended, left, region down) the page lists nobody.
// Nothing secret and nothing decrypted is ever sent anywhere: only sealed frames leave the page.
//
// The meetings list also uses this file for its "Copy" buttons (data-copy="<input id>").
"use strict";

(() => {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8", { fatal: false });
  const MAGIC = encoder.encode("MF2");
  const CHAT = 1;
  const SIGNATURE_BYTES = 64; // Ed25519, at the end of every frame
  const KEEP_EPOCHS = 2; // the current epoch and, for its grace, the previous one
  // frames of a superseded epoch, or of a sender the roster no longer lists, are accepted this
  // long after the newer key or roster arrived (docs/data-plane.md §Frames), then dropped
  const GRACE_MS = 2000;
  const EARLY_FRAMES = 256; // frames whose key or sender's roster entry has not arrived yet
  const CLOSE_REMOVED = 4451;
  const CLOSE_ENDED = 4410; // the relay closes an ended meeting's sockets
  // the control plane's process went away (no close frame, going away, an error, restarting):
  // join again for up to REJOIN_MS, as the CLI client does (meridian.client.participant)
  const LOST = new Set([1001, 1006, 1011, 1012]);
  const REJOIN_MS = 5000;

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

  // The roster the control plane signs: an EdDSA JWT whose signature is checked with its
  // `roster_key` (meridian.keys.roster). {seq, members: [{participant, name, key}]}, or an error.
  async function verifyRoster(controlKey, token, meeting) {
    const parts = typeof token === "string" ? token.split(".") : [];
    if (parts.length !== 3) throw new Error("roster refused: not a signed roster");
    let head;
    let claims;
    try {
      head = JSON.parse(decoder.decode(fromB64url(parts[0])));
      claims = JSON.parse(decoder.decode(fromB64url(parts[1])));
    } catch {
      throw new Error("roster refused: malformed");
    }
    const signature = fromB64url(parts[2]);
    const signed = encoder.encode(`${parts[0]}.${parts[1]}`);
    const good =
      head.alg === "EdDSA" &&
      (await crypto.subtle.verify({ name: "Ed25519" }, controlKey, signature, signed));
    if (!good) throw new Error("roster refused: not signed by the control plane");
    if (claims.iss !== "meridian-control" || claims.typ !== "roster") throw new Error("roster refused: not a roster");
    if (claims.mtg !== meeting) throw new Error(`roster refused: it is for meeting \`${claims.mtg}\``);
    if (!Number.isInteger(claims.seq) || !Array.isArray(claims.members)) throw new Error("roster refused: malformed");
    const members = [];
    for (const m of claims.members) {
      if (!m || typeof m.participant !== "string" || typeof m.name !== "string") throw new Error("roster refused: malformed");
      const key = await crypto.subtle.importKey("raw", fromB64url(m.signing_key), { name: "Ed25519" }, false, ["verify"]);
      members.push({ participant: m.participant, name: m.name, key });
    }
    return { seq: claims.seq, members };
  }

  // Whose frames are accepted, with which signing key; one the roster no longer lists is still
  // known for GRACE_MS, for its frames in flight (meridian.keys.SenderRoster).
  class Senders {
    constructor() {
      this.keys = new Map(); // participant id → Ed25519 CryptoKey (verify)
      this.former = new Map(); // participant id → {key, until}
    }

    replace(members) {
      const now = performance.now();
      const ids = new Set(members.map((m) => m.participant));
      for (const [id, key] of this.keys) if (!ids.has(id)) this.former.set(id, { key, until: now + GRACE_MS });
      this.keys = new Map(members.map((m) => [m.participant, m.key]));
      for (const [id, f] of [...this.former]) if (f.until <= now || this.keys.has(id)) this.former.delete(id);
    }

    keyOf(id) {
      const key = this.keys.get(id);
      if (key) return key;
      const former = this.former.get(id);
      return former && former.until > performance.now() ? former.key : null;
    }
  }

  class SenderKeys {
    constructor(meeting) {
      this.meeting = meeting;
      this.epochs = new Map(); // epoch → meeting key (HKDF CryptoKey)
      this.superseded = new Map(); // epoch → when a newer one arrived (performance.now())
      this.senders = new Map(); // "epoch|sender" → AES-GCM CryptoKey
      this.signing = null; // our own Ed25519 private key (sign)
    }

    get latest() {
      return this.epochs.size ? Math.max(...this.epochs.keys()) : null;
    }

    add(epoch, meetingKey) {
      const now = performance.now();
      this.epochs.set(epoch, meetingKey);
      const newest = Math.max(...this.epochs.keys());
      for (const e of this.epochs.keys()) if (e !== newest && !this.superseded.has(e)) this.superseded.set(e, now);
      const kept = [...this.epochs.keys()].sort((a, b) => a - b).slice(-KEEP_EPOCHS);
      for (const e of [...this.epochs.keys()]) if (!kept.includes(e)) this.epochs.delete(e);
      for (const e of [...this.superseded.keys()]) if (!kept.includes(e)) this.superseded.delete(e);
      for (const k of [...this.senders.keys()]) {
        const e = Number(k.split("|", 1)[0]);
        if (!kept.includes(e) || e === epoch) this.senders.delete(k);
      }
    }

    // whether frames of `epoch` are accepted now: the newest held, the previous one within its
    // grace, or one newer than any held (its key may be on its way)
    current(epoch) {
      const latest = this.latest;
      if (latest === null || epoch >= latest) return true;
      const since = this.superseded.get(epoch);
      return this.epochs.has(epoch) && since !== undefined && performance.now() - since <= GRACE_MS;
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
      const meetingBytes = encoder.encode(this.meeting);
      const aad = concat(header, meetingBytes);
      const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, key, payload));
      const sealed = concat(header, nonce, ct);
      // encrypt-then-sign: Ed25519 over header || nonce || ciphertext+tag || meeting
      const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, this.signing, concat(sealed, meetingBytes)));
      return concat(sealed, signature);
    }

    // whether `publicKey` signed `frame` for this meeting
    async verify(frame, publicKey) {
      const body = frame.subarray(0, frame.length - SIGNATURE_BYTES);
      const signature = frame.subarray(frame.length - SIGNATURE_BYTES);
      return crypto.subtle.verify({ name: "Ed25519" }, publicKey, signature, concat(body, encoder.encode(this.meeting)));
    }

    // {kind, epoch, sender, end}: the cleartext header of a frame; null if malformed
    static header(frame) {
      if (frame.length < 9 || MAGIC.some((b, i) => frame[i] !== b)) return null;
      const kind = frame[3];
      const epoch = new DataView(frame.buffer, frame.byteOffset).getUint32(4, false);
      const end = 9 + frame[8];
      if (frame.length < end + 12 + 16 + SIGNATURE_BYTES || end === 9) return null;
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
          frame.subarray(header.end + 12, frame.length - SIGNATURE_BYTES),
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
      this.roster = new Senders(); // whose frames are accepted (the signed roster)
      this.controlKey = null; // the control plane's roster key (Ed25519, verify)
      this.rosterSeq = -1;
      this.dropped = { bad_signature: 0, unknown_sender: 0, old_epoch: 0 };
      this.undecryptable = 0;
      this.early = []; // {frame, at}: frames waiting for their key or their sender's roster entry
      this.ended = null;
      this.relayLost = null; // why the relay connection ended, while signalling still listens
      this.rejoining = false; // joining again after the control plane's replica went away
      this.rejoins = 0;
      this.signal = null;
      this.relay = null;
      this.own = null;
      this.me = null;
      this.name = "";
      this.invite = linkInvite();
      this.paused = null;
      this.queue = Promise.resolve(); // frames and keys are handled one at a time, in order
      // the call, when media.js is loaded (it is on the meeting page)
      this.media = typeof window.MeridianMedia === "function" ? new window.MeridianMedia(this.mediaHost()) : null;
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

    // What the call may do with this meeting: seal as we seal chat, send on our relay.
    mediaHost() {
      const open = () => this.relay && this.relay.readyState === WebSocket.OPEN;
      return {
        me: () => this.me,
        nameOf: (id) => this.nameOf(id),
        canSend: () => open() && !this.ended && !this.paused && this.keys.latest !== null,
        seal: (kind, payload) => this.keys.seal(this.me, kind, payload),
        send: (frame) => {
          if (!open() || this.ended || this.paused) return false;
          this.relay.send(frame);
          return true;
        },
        control: (message) => {
          if (open()) this.relay.send(JSON.stringify(message));
        },
        backlog: () => (this.relay ? this.relay.bufferedAmount : 0),
      };
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
      // our frames are signed with this; only its public half leaves the page
      const signing = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
      this.keys.signing = signing.privateKey;
      const signingRaw = new Uint8Array(await crypto.subtle.exportKey("raw", signing.publicKey));

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
      const join = { type: "join", name, public_key: b64url(publicRaw), signing_key: b64url(signingRaw) };
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
      // a socket a join again replaced says nothing (see rejoin)
      signal.addEventListener("close", (event) => {
        if (signal === this.signal) this.onClosed("control plane", event);
      });

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
      relay.addEventListener("close", (event) => {
        if (relay === this.relay) this.onClosed("relay", event);
      });
      signal.send(JSON.stringify({ type: "connected" }));
      this.$("join").hidden = true;
      this.status(`Connected through the relay in ${ready.dc}: messages are end-to-end encrypted.`);
      this.$("line").focus();
      if (this.media) this.media.start().catch((error) => this.media.problem(`The call could not start: ${error.message}`, "start"));
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
      // no roster the control plane signed, no meeting: nothing could be told from a forgery
      // (the error ends the join, and the page says why)
      this.controlKey = await crypto.subtle.importKey("raw", fromB64url(answer.roster_key), { name: "Ed25519" }, false, ["verify"]);
      await this.applyRoster(answer.signed_roster);
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
      if (this.media) this.media.rotated();
      await this.retry();
    }

    // Take a roster the control plane signed (throws if it did not); an older one is ignored.
    async applyRoster(token) {
      const roster = await verifyRoster(this.controlKey, token, this.meeting);
      if (roster.seq <= this.rosterSeq) return;
      this.rosterSeq = roster.seq;
      this.roster.replace(roster.members);
      for (const m of roster.members) if (!this.names.has(m.participant)) this.names.set(m.participant, m.name);
      await this.retry();
    }

    // frames that waited for a key or a roster entry: open what now opens, hold or count the rest
    async retry() {
      const held = this.early;
      this.early = [];
      for (const { frame, at } of held) await this.onFrame(frame, { at });
    }

    // held frames past the grace are counted (a frame ahead of its key waits for its key)
    async expire() {
      const deadline = performance.now() - GRACE_MS;
      const held = this.early;
      this.early = [];
      for (const item of held) {
        const header = SenderKeys.header(item.frame);
        const ahead = header && this.keys.latest !== null && header.epoch > this.keys.latest;
        if (item.at >= deadline || ahead) this.early.push(item);
        else await this.onFrame(item.frame, { hold: false });
      }
    }

    hold(frame, at) {
      if (this.early.length >= EARLY_FRAMES) {
        const oldest = this.early.shift();
        this.serial(() => this.onFrame(oldest.frame, { hold: false }));
      }
      this.early.push({ frame, at });
      setTimeout(() => this.serial(() => this.expire()), GRACE_MS + 50);
    }

    drop(reason) {
      this.dropped[reason] += 1;
      const box = this.$("dropped");
      box.dataset.badSignature = String(this.dropped.bad_signature);
      box.dataset.unknownSender = String(this.dropped.unknown_sender);
      box.dataset.oldEpoch = String(this.dropped.old_epoch);
      box.textContent =
        `${this.dropped.bad_signature} with a bad signature, ` +
        `${this.dropped.unknown_sender} from unknown senders, ${this.dropped.old_epoch} of old epochs`;
    }

    // -- signalling ----------------------------------------------------------------------------

    async onSignal(text) {
      let message;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (message.signed_roster !== undefined) {
        try {
          await this.applyRoster(message.signed_roster);
        } catch (error) {
          // the roster held stays: a refused one changes nothing
          this.rostersRefused = (this.rostersRefused || 0) + 1;
          this.$("dropped").dataset.rostersRefused = String(this.rostersRefused);
          this.line(null, `A roster was refused: ${error.message}.`);
        }
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
          if (this.media) this.media.forget(message.participant);
          if (this.present.delete(message.participant)) {
            this.line(null, `${this.nameOf(message.participant)} left.`);
            this.renderRoster();
          }
          break;
        case "removed":
          this.removed(message.reason || "no reason given");
          break;
        case "ended":
          this.end(message.reason ? `The meeting ended: ${message.reason}.` : "The meeting ended.");
          break;
        case "warning":
          this.warn(String(message.message || "the meeting ends soon"));
          break;
        case "region_down":
          this.regionDown(String(message.dc || ""), String(message.message || "your data centre went down"));
          break;
        case "renew":
          // a fresh relay grant: the relay ends the session when the last one expires unrenewed
          if (this.relay && this.relay.readyState === WebSocket.OPEN && typeof message.grant === "string") {
            this.relay.send(JSON.stringify({ type: "renew", grant: message.grant }));
          }
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
      if (this.media && this.me) this.media.joined(participant);
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

    // No one is listed once this page is out of the meeting: it can no longer hear them.
    clearRoster() {
      if (this.media) this.media.stop(this.ended ? `The call is over: ${this.ended}` : "The call is over.");
      this.present.clear();
      this.$("roster").replaceChildren();
      this.$("people-heading").textContent = "Nobody here: you are not in the meeting";
    }

    warn(text) {
      const notices = this.$("notices");
      notices.append(el("li", text, "warning"));
      notices.hidden = false;
      this.line(null, text);
    }

    // The region node carrying this page went down: the control plane has taken it out of the
    // meeting; joining again places it in another allowed region.
    regionDown(dc, text) {
      this.ended = text;
      const box = this.$("refusal");
      const again = el("button", "Join again");
      again.type = "button";
      again.addEventListener("click", () => location.reload());
      box.replaceChildren(el("p", `Your data centre ${dc} went down: ${text}`, "error"), again);
      box.hidden = false;
      this.status(`Disconnected: the region node ${dc} is down.`);
      this.closeAll();
      this.disable();
      this.clearRoster();
    }

    renderRoster() {
      if (this.ended) return;
      const items = [el("li", `${this.name} (you)`)];
      for (const p of this.present) items.push(el("li", this.nameOf(p)));
      this.$("roster").replaceChildren(...items);
    }

    onClosed(what, event) {
      if (this.ended) return;
      if (what === "control plane" && LOST.has(event.code) && !this.rejoining) {
        // the control-plane replica went away (killed, restarting), not sending us off: join
        // again, through whichever replica the load balancer picks now
        this.rejoin();
        return;
      }
      if (event.code === CLOSE_REMOVED) {
        this.removed(event.reason || "no reason given");
        return;
      }
      if (event.code === CLOSE_ENDED) {
        // The relay's end order comes before signalling's `ended`, which says why (a plan's time
        // limit, say): while signalling is open, wait a moment for it; nothing is sent meanwhile.
        if (what === "relay" && this.signal && this.signal.readyState === WebSocket.OPEN) {
          this.disable();
          if (!this.endWait) this.endWait = setTimeout(() => this.end("The meeting ended."), 2000);
          return;
        }
        this.end("The meeting ended.");
        return;
      }
      const text = `The ${what} closed the connection (code ${event.code}${event.reason ? `: ${event.reason}` : ""}).`;
      if (what === "relay" && this.signal && this.signal.readyState === WebSocket.OPEN) {
        // The control plane may still say why (its region node went down, the meeting ended):
        // keep listening to it; nothing can be sent or heard meanwhile.
        if (this.relayLost) return;
        this.relayLost = text;
        this.status(text);
        this.line(null, text);
        this.disable();
        return;
      }
      this.end(this.relayLost || text);
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
      this.clearRoster();
    }

    end(text) {
      if (this.ended) return;
      clearTimeout(this.endWait);
      this.ended = text;
      this.status(text);
      this.line(null, text);
      this.closeAll();
      this.disable();
      this.clearRoster();
    }

    disable() {
      this.$("say").querySelector("button").disabled = true;
      this.$("line").disabled = true;
      this.$("leave").disabled = true;
    }

    // Join again for up to REJOIN_MS after the control plane's replica went away: a new
    // participation (new keys), the old relay connection closed first.
    async rejoin() {
      this.rejoining = true;
      const old = this.relay;
      this.relay = null;
      this.signal = null;
      if (old && old.readyState <= WebSocket.OPEN) old.close(1000);
      this.status("The control plane went away: joining again…");
      const deadline = Date.now() + REJOIN_MS;
      while (Date.now() < deadline && !this.ended) {
        try {
          await this.join();
          if (this.me && this.relay && this.relay.readyState === WebSocket.OPEN) {
            this.rejoins += 1;
            this.rejoining = false;
            return;
          }
        } catch (error) {
          // that replica did not take it (yet): try again in a moment
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      this.rejoining = false;
      this.end("The control plane went away and no replica took you back.");
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

    // Checked in this order: its epoch is current, its sender is in the signed roster, that
    // sender's signing key signed it, and it opens. Nothing of a dropped frame is shown.
    async onFrame(frame, { at = performance.now(), hold = true } = {}) {
      const header = SenderKeys.header(frame);
      if (!header) {
        this.undecryptable += 1;
        return;
      }
      if (!this.keys.current(header.epoch)) {
        this.drop("old_epoch");
        return;
      }
      const signer = this.roster.keyOf(header.sender);
      if (!signer) {
        if (hold) this.hold(frame, at); // its roster entry may be on its way
        else this.drop("unknown_sender");
        return;
      }
      if (!(await this.keys.verify(frame, signer))) {
        this.drop("bad_signature");
        return;
      }
      const payload = await this.keys.open(frame, header);
      if (payload === null) {
        const latest = this.keys.latest;
        if (hold && latest !== null && header.epoch > latest) this.hold(frame, at); // its key may be on its way
        else this.undecryptable += 1;
        return;
      }
      if (header.kind === CHAT) this.line(header.sender, decoder.decode(payload));
      else if (this.media) this.media.onFrame(header.sender, header.kind, payload);
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
