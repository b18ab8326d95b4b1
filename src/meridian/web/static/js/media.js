// The call in the meeting page: camera and microphone, encoded with WebCodecs, sealed like chat.
//
// meeting.js owns the meeting (keys, roster, signalling, the relay socket) and hands this file a
// small `host`: seal(kind, bytes) seals and signs a payload exactly as a chat line is sealed
// (docs/data-plane.md §Frames, the same SenderKeys), send(frame) puts it on the relay, control()
// sends the relay a text message, and backlog() is the relay socket's unsent bytes. Every frame
// received is checked and opened by meeting.js (epoch, roster, signature, key) before it gets here.
//
// What is sent (docs/data-plane.md §Media):
//   - video twice, VP8 at two qualities (LAYERS: frame kinds 3 and 4); the relay forwards each
//     receiver the one it asked for ({"type": "layer"}), and this page steps down to the lower
//     one when it falls behind (its decoder backs up, or frames arrive later than they did);
//   - audio, Opus (kind 2), which every receiver gets;
//   - keyframe requests (kind 2): sent by a receiver that joined, lost a frame, switched quality
//     or whose decoder failed; a sender answers with keyframes of both qualities, as it does on
//     a key rotation, when someone joins, and every KEY_EVERY_MS;
//   - its microphone and camera state (kind 2), when they change and when someone joins.
// Inside the sealed payload, a 24-byte header (big-endian) before the codec's bytes:
//   version (1) | type (1: 1 audio, 2 video, 3 keyframe request, 4 state) | flags (1: bit 0 a
//   keyframe, bit 1 a synthetic test pattern from `meridian client`: counted, not decoded)
//   | layer (1: 0 high, 1 low) | sequence (4, per sender and stream)
//   | capture time (8, float64 ms since the Unix epoch) | codec timestamp (8, float64 µs)
// The capture time travels sealed, so glass-to-glass latency (camera frame read → frame drawn)
// is measured by the receiving page without telling the relays anything.
"use strict";

(() => {
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  const MEDIA = 2; // frame kinds (meridian.keys.FrameKind)
  const VIDEO_HIGH = 3;
  const VIDEO_LOW = 4;
  const AUDIO = 1; // payload types
  const VIDEO = 2;
  const REQUEST = 3;
  const STATE = 4;
  const VERSION = 1;
  const HEADER_BYTES = 24;
  const LAYERS = [
    { kind: VIDEO_HIGH, name: "high", width: 640, height: 360, bitrate: 700_000 },
    { kind: VIDEO_LOW, name: "low", width: 320, height: 180, bitrate: 180_000 },
  ];
  const KEY_EVERY_MS = 4000; // a keyframe at least this often, whatever was asked
  const REQUEST_EVERY_MS = 500; // keyframe requests to one sender, at most this often
  const ANSWER_EVERY_MS = 250; // keyframes in answer to requests, at most this often (a receiver asks again)
  const SEND_BACKLOG = 1 << 20; // relay socket bytes unsent above which video is dropped
  const DECODE_BACKLOG = 6; // chunks queued in a decoder above which it skips to a keyframe
  const LATE_MS = 400; // a frame this much later than the earliest seen means we fall behind
  const STEP_UP_MS = 10_000; // back to the higher quality after this long without falling behind
  const SPEAKING = 0.015; // RMS level above which someone is speaking
  const TICK_MS = 250;
  const G2G_SAMPLES = 600;

  const wallClock = () => performance.timeOrigin + performance.now();

  function supported() {
    const missing = ["VideoEncoder", "VideoDecoder", "AudioEncoder", "AudioDecoder", "EncodedVideoChunk"].filter(
      (name) => typeof window[name] !== "function",
    );
    return missing;
  }

  function pack(type, { key = false, layer = 0, seq = 0, capture = wallClock(), timestamp = 0, data = new Uint8Array(0) }) {
    const out = new Uint8Array(HEADER_BYTES + data.length);
    const view = new DataView(out.buffer);
    out[0] = VERSION;
    out[1] = type;
    out[2] = key ? 1 : 0;
    out[3] = layer;
    view.setUint32(4, seq >>> 0, false);
    view.setFloat64(8, capture, false);
    view.setFloat64(16, timestamp, false);
    out.set(data, HEADER_BYTES);
    return out;
  }

  function unpack(payload) {
    if (payload.length < HEADER_BYTES || payload[0] !== VERSION) return null;
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    const capture = view.getFloat64(8, false);
    const timestamp = view.getFloat64(16, false);
    // a signed sender can still seal any times: one the codecs cannot take (NaN, infinite,
    // beyond an integer's range) is a malformed chunk, dropped like a short one
    if (!Number.isFinite(capture) || !Number.isSafeInteger(Math.trunc(timestamp))) return null;
    return {
      type: payload[1],
      key: (payload[2] & 1) === 1,
      synthetic: (payload[2] & 2) === 2,
      layer: payload[3],
      seq: view.getUint32(4, false),
      capture,
      timestamp,
      data: payload.subarray(HEADER_BYTES),
    };
  }

  function rms(samples) {
    let sum = 0;
    for (let i = 0; i < samples.length; i += 1) sum += samples[i] * samples[i];
    return samples.length ? Math.sqrt(sum / samples.length) : 0;
  }

  function samplesOf(data) {
    const samples = new Float32Array(data.numberOfFrames);
    data.copyTo(samples, { planeIndex: 0, format: "f32-planar" });
    return samples;
  }

  function percentile(sorted, q) {
    if (!sorted.length) return 0;
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  // One person's tile in the grid: a canvas, a name, a speaking dot, their microphone and camera.
  class Tile {
    constructor(grid, participant, name, self) {
      this.node = el("figure", null, "tile");
      this.node.dataset.participant = participant;
      this.node.dataset.videoFrames = "0";
      this.node.dataset.audioFrames = "0";
      this.node.dataset.speaking = "false";
      this.node.dataset.muted = "false";
      this.node.dataset.camera = "on";
      if (self) this.node.dataset.self = "true";
      this.canvas = el("canvas");
      this.canvas.width = 640;
      this.canvas.height = 360;
      this.canvas.setAttribute("role", "img");
      this.canvas.setAttribute("aria-label", self ? "your camera" : `video of ${name}`);
      this.label = el("span", name, "who");
      this.badge = el("span", "", "badge");
      const caption = el("figcaption");
      caption.append(el("span", "", "dot"), this.label, this.badge);
      this.node.append(this.canvas, caption);
      grid.append(this.node);
      this.context = this.canvas.getContext("2d");
      this.level = 0;
      this.videoFrames = 0;
      this.audioFrames = 0;
      this.lastFrameAt = 0;
      this.maxGap = 0;
    }

    name(text) {
      this.label.textContent = text;
    }

    draw(frame) {
      const w = frame.displayWidth;
      const h = frame.displayHeight;
      if (this.canvas.width !== w || this.canvas.height !== h) {
        this.canvas.width = w;
        this.canvas.height = h;
      }
      this.context.drawImage(frame, 0, 0, w, h);
    }

    // a decoded video frame was drawn
    counted(at) {
      if (this.lastFrameAt) this.maxGap = Math.max(this.maxGap, at - this.lastFrameAt);
      this.lastFrameAt = at;
      this.videoFrames += 1;
      this.node.dataset.videoFrames = String(this.videoFrames);
      this.node.dataset.lastFrameAt = String(Math.round(at));
      this.node.dataset.maxGap = String(Math.round(this.maxGap));
    }

    // a chunk dropped as a replay (not newer than one already taken from the same stream)
    replayed() {
      this.replays = (this.replays || 0) + 1;
      this.node.dataset.replayed = String(this.replays);
    }

    synthetic(video) {
      this.syntheticFrames = (this.syntheticFrames || 0) + 1;
      this.node.dataset.syntheticFrames = String(this.syntheticFrames);
      if (video) this.node.dataset.camera = "test pattern";
    }

    heard(level) {
      this.audioFrames += 1;
      this.node.dataset.audioFrames = String(this.audioFrames);
      this.node.dataset.lastAudioAt = String(Math.round(wallClock()));
      this.hear(level);
    }

    hear(level) {
      this.level = Math.max(level, this.level * 0.85);
    }

    state(muted, camera) {
      this.node.dataset.muted = String(muted);
      this.node.dataset.camera = camera ? "on" : "off";
      const parts = [];
      if (muted) parts.push("muted");
      if (!camera) parts.push("camera off");
      this.badge.textContent = parts.length ? ` · ${parts.join(", ")}` : "";
      if (!camera) this.blank();
    }

    blank() {
      this.context.fillStyle = "#222";
      this.context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    }

    tick() {
      const speaking = this.level > SPEAKING && this.node.dataset.muted !== "true";
      this.node.dataset.speaking = String(speaking);
      this.level *= 0.7;
      return speaking;
    }

    remove() {
      this.node.remove();
    }
  }

  // What one other participant sends us: a decoder per video quality, one for audio, a tile.
  class Peer {
    constructor(call, participant) {
      this.call = call;
      this.id = participant;
      this.tile = new Tile(call.grid, participant, call.host.nameOf(participant), false);
      this.lanes = new Map(); // frame kind → {decoder, wantKey, seq, captures}
      this.newest = new Map(); // stream → the newest chunk taken {capture, seq} (see replay)
      this.audio = null;
      this.playAt = 0;
      this.earliest = Infinity; // the smallest arrival lag seen: this sender's clock and path
      this.failures = 0;
    }

    // Whether `m` replays what this sender already sent on `stream` (audio or a video quality):
    // anyone who saw a sealed chunk (a participant, a relay) can send it again, and it still
    // opens and verifies; its sealed capture time cannot be changed, and each stream's only
    // moves on (a sender that starts again starts later), so an older one, or the same chunk
    // twice, is dropped rather than drawn or played.
    replay(stream, m) {
      const last = this.newest.get(stream);
      if (last && (m.capture < last.capture || (m.capture === last.capture && m.seq === last.seq))) {
        this.tile.replayed();
        return true;
      }
      this.newest.set(stream, { capture: m.capture, seq: m.seq });
      return false;
    }

    lane(kind) {
      let lane = this.lanes.get(kind);
      if (!lane) {
        lane = { decoder: null, wantKey: true, seq: -1, captures: new Map() };
        this.lanes.set(kind, lane);
      }
      return lane;
    }

    video(kind, m) {
      const lane = this.lane(kind);
      if (lane.seq >= 0 && m.seq !== ((lane.seq + 1) >>> 0)) lane.wantKey = true; // a loss
      lane.seq = m.seq;
      const lag = wallClock() - m.capture;
      this.earliest = Math.min(this.earliest, lag);
      if (lag - this.earliest > LATE_MS) this.call.fellBehind();
      if (lane.wantKey && !m.key) {
        this.call.requestKey(this.id);
        return;
      }
      if (!lane.decoder || lane.decoder.state === "closed") lane.decoder = this.videoDecoder(lane);
      if (!m.key && lane.decoder.decodeQueueSize > DECODE_BACKLOG) {
        // the decoder cannot keep up: skip to the next keyframe, and take the lower quality
        lane.wantKey = true;
        this.call.fellBehind();
        this.call.requestKey(this.id);
        return;
      }
      lane.wantKey = false;
      lane.captures.set(m.timestamp, m.capture);
      if (lane.captures.size > 120) lane.captures.delete(lane.captures.keys().next().value);
      try {
        lane.decoder.decode(new EncodedVideoChunk({ type: m.key ? "key" : "delta", timestamp: m.timestamp, data: m.data }));
      } catch (error) {
        this.failed(lane, error);
      }
    }

    videoDecoder(lane) {
      const decoder = new VideoDecoder({
        output: (frame) => {
          const at = wallClock();
          try {
            if (this.tile.node.dataset.camera !== "off") this.tile.draw(frame);
            const capture = lane.captures.get(frame.timestamp);
            lane.captures.delete(frame.timestamp);
            if (capture !== undefined) {
              this.call.glassToGlass(at - capture);
              this.call.lastCaptures.set(this.id, capture);
            }
          } finally {
            frame.close();
          }
          this.failures = 0;
          this.tile.counted(at);
          this.call.lastFrames.set(this.id, at);
        },
        error: (error) => this.failed(lane, error),
      });
      decoder.configure({ codec: "vp8", optimizeForLatency: true });
      return decoder;
    }

    failed(lane, error) {
      this.failures += 1;
      lane.wantKey = true;
      if (lane.decoder && lane.decoder.state !== "closed") lane.decoder.close();
      lane.decoder = null;
      this.call.problem(
        `This page could not decode the video of ${this.call.host.nameOf(this.id)}: ${error.message || error}.` +
          (this.failures > 2 ? " It keeps failing: this browser cannot show this call's video." : " Asking for a fresh keyframe."),
        "decode",
      );
      this.call.requestKey(this.id);
    }

    sound(m) {
      if (!this.audio || this.audio.state === "closed") {
        this.audio = new AudioDecoder({
          output: (data) => {
            try {
              const samples = samplesOf(data);
              this.tile.heard(rms(samples));
              this.play(samples, data.sampleRate);
            } finally {
              data.close();
            }
          },
          error: (error) => {
            this.audio = null;
            this.call.problem(`This page could not decode the audio of ${this.call.host.nameOf(this.id)}: ${error.message || error}.`, "decode");
          },
        });
        this.audio.configure({ codec: "opus", sampleRate: 48000, numberOfChannels: 1 });
      }
      this.audio.decode(new EncodedAudioChunk({ type: "key", timestamp: m.timestamp, data: m.data }));
    }

    play(samples, rate) {
      const ctx = this.call.speakers;
      if (!ctx || ctx.state === "closed") return;
      const buffer = ctx.createBuffer(1, samples.length, rate);
      buffer.copyToChannel(samples, 0);
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(ctx.destination);
      // a small jitter buffer; when playback has drifted far ahead, start again near now
      let at = Math.max(ctx.currentTime + 0.04, this.playAt);
      if (at - ctx.currentTime > 0.3) at = ctx.currentTime + 0.04;
      source.start(at);
      this.playAt = at + buffer.duration;
    }

    close() {
      for (const lane of this.lanes.values()) if (lane.decoder && lane.decoder.state !== "closed") lane.decoder.close();
      if (this.audio && this.audio.state !== "closed") this.audio.close();
      this.lanes.clear();
      this.tile.remove();
    }
  }

  class Call {
    constructor(host) {
      this.host = host;
      this.$ = (id) => document.getElementById(id);
      this.grid = this.$("grid");
      this.peers = new Map();
      this.stopped = false;
      this.started = false;
      this.muted = false;
      this.cameraOn = true;
      this.keyWanted = true;
      this.lastKey = 0;
      this.encoders = [];
      this.audioEncoder = null;
      this.stream = null;
      this.speakers = null;
      this.self = null;
      this.seq = { audio: 0, [VIDEO_HIGH]: 0, [VIDEO_LOW]: 0 };
      this.captures = new Map(); // codec timestamp → capture time, for the encoders' outputs
      this.sending = Promise.resolve();
      this.requested = new Map(); // sender → when we last asked it for a keyframe
      this.mode = "auto";
      this.receiving = "high";
      this.behindAt = 0; // when this page last fell behind
      this.lowSince = 0;
      this.g2g = [];
      this.sent = { frames: 0, bytes: 0, dropped: 0 };
      this.active = null;
      this.lastFrames = new Map(); // sender → when we last drew a frame of theirs (kept after they go)
      this.lastCaptures = new Map(); // sender → when they captured the last frame of theirs we drew
      Call.current = this;
      const join = this.$("join");
      // audio may play only after a gesture: the join button is one
      if (join) join.addEventListener("submit", () => this.unlockSpeakers());
      this.$("mute").addEventListener("click", () => this.toggleMute());
      this.$("camera").addEventListener("click", () => this.toggleCamera());
      this.$("quality").addEventListener("change", (event) => this.choose(event.target.value));
    }

    unlockSpeakers() {
      if (this.speakers || typeof AudioContext !== "function") return;
      this.speakers = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    }

    problem(text, what) {
      const box = this.$("media-problem");
      box.textContent = text;
      box.dataset.problem = what;
      box.hidden = false;
    }

    // -- sending ---------------------------------------------------------------------------

    async start() {
      if (this.started || this.stopped) return;
      this.started = true;
      this.$("call").hidden = false;
      this.unlockSpeakers();
      this.self = new Tile(this.grid, this.host.me(), `${this.host.nameOf(this.host.me())} (you)`, true);
      this.timer = setInterval(() => this.tick(), TICK_MS);
      const missing = supported();
      if (missing.length) {
        this.problem(
          `This browser cannot take part in the call: it has no ${missing.join(", ")} (WebCodecs). ` +
            "You can still chat; use a current Chromium, Chrome or Edge for audio and video.",
          "unsupported",
        );
        this.$("call").dataset.state = "unsupported";
        return;
      }
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({
          video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } },
          audio: { channelCount: 1 },
        });
      } catch (error) {
        this.problem(`No camera or microphone (${error.message || error.name}): you can still see and hear the others.`, "capture");
        this.$("call").dataset.state = "receiving";
        this.self.state(true, false);
        return;
      }
      if (this.stopped) {
        this.stream.getTracks().forEach((t) => t.stop());
        return;
      }
      if (typeof MediaStreamTrackProcessor !== "function") {
        this.problem("This browser cannot read frames from your camera (no MediaStreamTrackProcessor): you can still see and hear the others.", "capture");
        return;
      }
      this.$("call").dataset.state = "sending";
      const [video] = this.stream.getVideoTracks();
      const [audio] = this.stream.getAudioTracks();
      if (video) this.videoLoop(video).catch((error) => this.problem(`The camera stopped: ${error.message}`, "capture"));
      if (audio) this.audioLoop(audio).catch((error) => this.problem(`The microphone stopped: ${error.message}`, "capture"));
      this.sendState();
    }

    makeEncoders() {
      this.encoders = LAYERS.map((layer, index) => {
        const codec = new VideoEncoder({
          output: (chunk) => this.encodedVideo(layer, index, chunk),
          error: (error) => this.problem(`The ${layer.name} video encoder failed: ${error.message}`, "encode"),
        });
        codec.configure({
          codec: "vp8",
          width: layer.width,
          height: layer.height,
          bitrate: layer.bitrate,
          framerate: 30,
          latencyMode: "realtime",
        });
        return { layer, codec };
      });
    }

    async videoLoop(track) {
      this.makeEncoders();
      const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
      while (!this.stopped) {
        const { value: frame, done } = await reader.read();
        if (done) break;
        try {
          const at = wallClock();
          if (this.cameraOn) this.self.draw(frame);
          if (this.cameraOn && this.host.canSend()) {
            const key = this.keyWanted || at - this.lastKey > KEY_EVERY_MS;
            if (key) {
              this.keyWanted = false;
              this.lastKey = at;
            }
            this.captures.set(frame.timestamp, at);
            if (this.captures.size > 120) this.captures.delete(this.captures.keys().next().value);
            for (const { codec } of this.encoders) {
              if (codec.state !== "configured") continue;
              if (!key && codec.encodeQueueSize > 2) continue; // the encoder is behind: skip a frame
              codec.encode(frame, { keyFrame: key });
            }
          }
        } finally {
          frame.close();
        }
      }
      reader.cancel().catch(() => {});
    }

    encodedVideo(layer, index, chunk) {
      const data = new Uint8Array(chunk.byteLength);
      chunk.copyTo(data);
      const capture = this.captures.get(chunk.timestamp) ?? wallClock();
      const seq = this.seq[layer.kind];
      this.seq[layer.kind] = (seq + 1) >>> 0;
      const payload = pack(VIDEO, { key: chunk.type === "key", layer: index, seq, capture, timestamp: chunk.timestamp, data });
      this.ship(layer.kind, payload, true);
    }

    async audioLoop(track) {
      this.audioEncoder = new AudioEncoder({
        output: (chunk) => {
          const data = new Uint8Array(chunk.byteLength);
          chunk.copyTo(data);
          const seq = this.seq.audio;
          this.seq.audio = (seq + 1) >>> 0;
          this.ship(MEDIA, pack(AUDIO, { seq, timestamp: chunk.timestamp, data }), false);
        },
        error: (error) => this.problem(`The audio encoder failed: ${error.message}`, "encode"),
      });
      const rate = track.getSettings().sampleRate || 48000;
      if (![8000, 12000, 16000, 24000, 48000].includes(rate)) {
        this.problem(`Your microphone runs at ${rate} Hz, which Opus cannot encode: the others will not hear you.`, "capture");
        return;
      }
      this.audioEncoder.configure({ codec: "opus", sampleRate: rate, numberOfChannels: 1, bitrate: 32_000 });
      const reader = new MediaStreamTrackProcessor({ track }).readable.getReader();
      while (!this.stopped) {
        const { value: data, done } = await reader.read();
        if (done) break;
        try {
          if (!this.muted) this.self.hear(rms(samplesOf(data)));
          if (!this.muted && this.host.canSend() && this.audioEncoder.state === "configured") {
            this.audioEncoder.encode(data);
          }
        } finally {
          data.close();
        }
      }
      reader.cancel().catch(() => {});
    }

    // Seal and send, in order (sealing is asynchronous). Video is dropped while the relay socket
    // is backed up; the next video frame is then a keyframe.
    ship(kind, payload, video) {
      this.sending = this.sending
        .then(async () => {
          if (this.stopped || !this.host.canSend()) return;
          if (video && this.host.backlog() > SEND_BACKLOG) {
            this.keyWanted = true;
            this.sent.dropped += 1;
            return;
          }
          const frame = await this.host.seal(kind, payload);
          if (this.host.send(frame)) {
            this.sent.frames += 1;
            this.sent.bytes += frame.length;
          }
        })
        .catch(() => {}); // no key yet, or the socket went: nothing to send it with
    }

    sendState() {
      const flags = (this.muted ? 0 : 1) | (this.cameraOn ? 2 : 0);
      this.ship(MEDIA, pack(STATE, { data: Uint8Array.of(flags) }), false);
      if (this.self) this.self.state(this.muted, this.cameraOn);
    }

    requestKey(sender) {
      const now = performance.now();
      if (now - (this.requested.get(sender) || -Infinity) < REQUEST_EVERY_MS) return;
      this.requested.set(sender, now);
      this.ship(MEDIA, pack(REQUEST, { data: encoder.encode(sender) }), false);
    }

    toggleMute() {
      this.muted = !this.muted;
      const button = this.$("mute");
      button.setAttribute("aria-pressed", String(this.muted));
      button.textContent = this.muted ? "Unmute" : "Mute";
      this.sendState();
    }

    toggleCamera() {
      this.cameraOn = !this.cameraOn;
      const button = this.$("camera");
      button.setAttribute("aria-pressed", String(!this.cameraOn));
      button.textContent = this.cameraOn ? "Camera off" : "Camera on";
      if (this.cameraOn) this.keyWanted = true;
      else if (this.self) this.self.blank();
      this.sendState();
    }

    // -- meeting events (from meeting.js) ----------------------------------------------------

    // a new key epoch (or our first): the next frames are keyframes, sealed under the new key
    rotated() {
      this.keyWanted = true;
    }

    joined(participant) {
      if (participant === this.host.me()) return;
      this.peer(participant);
      this.keyWanted = true; // the newcomer needs a keyframe to start from
      if (this.started) this.sendState();
    }

    forget(participant) {
      const peer = this.peers.get(participant);
      if (!peer) return;
      peer.close();
      this.peers.delete(participant);
    }

    peer(participant) {
      let peer = this.peers.get(participant);
      if (!peer) {
        peer = new Peer(this, participant);
        this.peers.set(participant, peer);
      } else {
        peer.tile.name(this.host.nameOf(participant));
      }
      return peer;
    }

    // A media frame meeting.js checked and opened: its sender is in the signed roster and signed it.
    onFrame(sender, kind, payload) {
      if (this.stopped || sender === this.host.me()) return;
      const m = unpack(payload);
      if (!m) return;
      if (m.type === REQUEST) {
        const target = decoder.decode(m.data);
        // answered at most every ANSWER_EVERY_MS: one participant asking at every turn must
        // not make every frame to everyone a keyframe; one still waiting asks again
        if ((!target || target === this.host.me()) && wallClock() - this.lastKey >= ANSWER_EVERY_MS) {
          this.keyWanted = true;
        }
        return;
      }
      if (!this.started) return;
      const peer = this.peer(sender);
      if (m.synthetic) {
        // a test pattern from `meridian client` (no codec inside): counted, never decoded
        peer.tile.synthetic((m.type === VIDEO) | 0);
        return;
      }
      if (m.type === STATE && m.data.length) {
        peer.tile.state((m.data[0] & 1) === 0, (m.data[0] & 2) === 2);
      } else if (m.type === AUDIO && kind === MEDIA) {
        if (peer.replay("audio", m)) return;
        if (typeof AudioDecoder === "function") peer.sound(m);
      } else if (m.type === VIDEO && (kind === VIDEO_HIGH || kind === VIDEO_LOW)) {
        if (peer.replay(kind, m)) return;
        if (typeof VideoDecoder === "function") peer.video(kind, m);
      }
    }

    // -- quality -----------------------------------------------------------------------------

    choose(mode) {
      this.mode = mode;
      if (mode !== "auto") this.receive(mode);
    }

    fellBehind() {
      this.behindAt = performance.now();
      if (this.mode === "auto" && this.receiving !== "low") this.receive("low");
    }

    receive(layer) {
      if (this.receiving === layer) return;
      this.receiving = layer;
      this.lowSince = performance.now();
      this.host.control({ type: "layer", layer });
      this.$("call").dataset.layer = layer;
      this.$("receiving").textContent = `Receiving ${layer} quality${this.mode === "auto" ? " (chosen automatically)" : ""}.`;
      for (const peer of this.peers.values()) {
        peer.earliest = Infinity;
        this.requestKey(peer.id);
      }
    }

    // -- every TICK_MS: who speaks, the active speaker first, stepping back up -----------------

    glassToGlass(ms) {
      this.g2g.push(ms);
      if (this.g2g.length > G2G_SAMPLES) this.g2g.shift();
    }

    tick() {
      if (this.stopped) return;
      let loudest = null;
      const tiles = [...this.peers.values()].map((p) => p.tile);
      if (this.self) tiles.push(this.self);
      for (const tile of tiles) {
        if (tile.tick() && (!loudest || tile.level > loudest.level)) loudest = tile;
      }
      if (loudest && loudest !== this.active) {
        if (this.active) this.active.node.dataset.active = "false";
        this.active = loudest;
        loudest.node.dataset.active = "true";
        this.grid.prepend(loudest.node); // the active speaker first
      }
      const now = performance.now();
      if (this.mode === "auto" && this.receiving === "low" && now - this.behindAt > STEP_UP_MS && now - this.lowSince > STEP_UP_MS) {
        this.receive("high");
      }
      const box = this.$("call");
      const sorted = [...this.g2g].sort((a, b) => a - b);
      box.dataset.g2gCount = String(sorted.length);
      box.dataset.g2gP50 = percentile(sorted, 0.5).toFixed(1);
      box.dataset.g2gP99 = percentile(sorted, 0.99).toFixed(1);
      box.dataset.sentFrames = String(this.sent.frames);
    }

    // when a frame of `sender` was last drawn (ms since the Unix epoch), or null
    lastFrameAt(sender) {
      return this.lastFrames.has(sender) ? this.lastFrames.get(sender) : null;
    }

    // when `sender` captured the last frame of theirs drawn here (ms since the Unix epoch), or null
    lastCaptureAt(sender) {
      return this.lastCaptures.has(sender) ? this.lastCaptures.get(sender) : null;
    }

    resetGaps() {
      for (const peer of this.peers.values()) {
        peer.tile.maxGap = 0;
        peer.tile.node.dataset.maxGap = "0";
      }
    }

    // Out of the meeting (left, removed, ended, region down): nothing more is sent or shown.
    stop(text) {
      if (this.stopped) return;
      this.stopped = true;
      clearInterval(this.timer);
      if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
      for (const { codec } of this.encoders) if (codec.state !== "closed") codec.close();
      if (this.audioEncoder && this.audioEncoder.state !== "closed") this.audioEncoder.close();
      for (const peer of this.peers.values()) peer.close();
      this.peers.clear();
      if (this.self) this.self.remove();
      if (this.speakers && this.speakers.state !== "closed") this.speakers.close().catch(() => {});
      this.$("mute").disabled = true;
      this.$("camera").disabled = true;
      this.$("quality").disabled = true;
      const box = this.$("call");
      box.dataset.state = "stopped";
      this.grid.replaceChildren(el("p", text || "The call is over.", "muted"));
    }
  }

  Call.current = null;
  window.MeridianMedia = Call;
})();
