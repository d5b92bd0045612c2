// The Edgeloop device contract in a browser, on the Firebase Web SDK and LiteRT.js (README: "The web app").
//
// What client_sdk/ does in Python, for a page: sign in (Firebase Auth), read the model pointer
// (models/{model}, one document), pick production or the canary for this device (policy.js), download the
// model only when it changed, install it only if its size, sha256, Ed25519 signature (by the pinned key)
// and its own description (declared input, packed labels, output) are what the pointer promised, keep it
// in IndexedDB so a reload costs one document read, classify with LiteRT.js, capture hard cases within the
// same policy and budgets (policy.js, settings from config.json), and report outcomes as feedback documents.
// A refused model never becomes active and is not fetched again; the installed one stays.

import { initializeApp } from "firebase/app";
import { connectAuthEmulator, getAuth, signInAnonymously } from "firebase/auth";
import { connectFirestoreEmulator, doc, getDoc, getFirestore, serverTimestamp, setDoc } from "firebase/firestore";
import { connectStorageEmulator, getBytes, getStorage, ref, uploadBytes } from "firebase/storage";
import { Tensor, loadAndCompile, loadLiteRt } from "@litertjs/core";

import { CaptureReason, captureReason, deviceSettings, modelForDevice, spend, utcToday } from "./policy.js";
import { ModelFileError, describe, packedLabels } from "./tflite.js";

const DATABASE = "edgeloop";
const STORE = "models";
const SUPPORTED_INPUT_DTYPES = ["uint8"]; // client_sdk/contract.py: what this app feeds
const CHANNELS = 3; // RGB
const BATCH = 1; // one image per inference: the batch the trainer declares (trainer_job/convert.py)
const CONTENT_TYPES = { png: ["image/png", "png"], jpeg: ["image/jpeg", "jpg"] }; // client_sdk/capture.py
const JPEG_QUALITY = 0.9;
// An Ed25519 public key's DER SubjectPublicKeyInfo (RFC 8410): this fixed header, then the 32-byte key.
const ED25519_SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
const ED25519_KEY_BYTES = 32;

export class ModelRefused extends Error {
  constructor(version, reason, message) {
    super(`${version}: ${message}`);
    this.version = version;
    this.reason = reason;
  }
}

const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
const base64Bytes = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const predictionId = () => crypto.randomUUID().replaceAll("-", ""); // as client_sdk: uuid4().hex

function pemBytes(pem) {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return base64Bytes(body);
}

// A small promise wrapper over one IndexedDB object store: model id -> {ref, data}.
function openStore() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function inStore(db, mode, action) {
  return new Promise((resolve, reject) => {
    const transaction = db.transaction(STORE, mode);
    const request = action(transaction.objectStore(STORE));
    transaction.oncomplete = () => resolve(request.result);
    transaction.onerror = () => reject(transaction.error);
  });
}

export class EdgeloopWebClient {
  // `config` is what `edgeloop web` serves as config.json (or a production app's own copy of it).
  constructor(config, { onEvent = () => {} } = {}) {
    this.config = config;
    this.model = config.model;
    this.settings = config.client;
    this.onEvent = onEvent;
    this.active = null; // {ref, compiled, description}
    this.refused = new Set(JSON.parse(localStorage.getItem(this.key("refused")) ?? "[]"));
    this.deviceId = localStorage.getItem("edgeloop:device_id") ?? crypto.randomUUID();
    localStorage.setItem("edgeloop:device_id", this.deviceId); // stable per installation: decides canary rollouts
    this.stats = { pointerReads: 0, downloads: 0 };
  }

  key(name) { return `edgeloop:${this.model}:${name}`; }

  emit(kind, detail) { this.onEvent({ kind, ...detail }); }

  async start() {
    const app = initializeApp(this.config.firebase);
    this.auth = getAuth(app);
    this.db = getFirestore(app);
    this.storage = getStorage(app);
    const emulators = this.config.emulators;
    if (emulators) { // the local stack; a production config has none
      connectAuthEmulator(this.auth, emulators.auth, { disableWarnings: true });
      connectFirestoreEmulator(this.db, emulators.firestore.host, emulators.firestore.port);
      connectStorageEmulator(this.storage, emulators.storage.host, emulators.storage.port);
    }
    await this.auth.authStateReady();
    if (!this.auth.currentUser) await signInAnonymously(this.auth);
    this.uid = this.auth.currentUser.uid;
    this.signatureValid = await this.importKey(this.config.public_key_pem);
    await loadLiteRt(this.config.litert_wasm);
    this.emit("signed_in", { uid: this.uid });
    this.store = await openStore();
    await this.loadInstalled();
  }

  // The pinned key, checked with WebCrypto's Ed25519 where the browser has it, else with @noble/ed25519.
  async importKey(pem) {
    const spki = pemBytes(pem);
    try {
      const key = await crypto.subtle.importKey("spki", spki, { name: "Ed25519" }, false, ["verify"]);
      this.signatureVerifier = "WebCrypto";
      return (signature, data) => crypto.subtle.verify({ name: "Ed25519" }, key, signature, data);
    } catch (error) {
      if (error.name !== "NotSupportedError") throw new Error(`the pinned public key is not an Ed25519 key: ${error.message}`);
    }
    const prefix = ED25519_SPKI_PREFIX.length;
    if (spki.length !== prefix + ED25519_KEY_BYTES || ED25519_SPKI_PREFIX.some((byte, i) => spki[i] !== byte)) {
      throw new Error("the pinned public key is not an Ed25519 key (SubjectPublicKeyInfo, RFC 8410)");
    }
    const ed25519 = await import("@noble/ed25519"); // verifyAsync hashes with WebCrypto's SHA-512
    const raw = spki.slice(prefix);
    this.signatureVerifier = "@noble/ed25519";
    return async (signature, data) => {
      try { return await ed25519.verifyAsync(signature, data, raw); } catch { return false; } // a malformed signature
    };
  }

  // The verified model kept from last time, checked again before use (the stored bytes could have changed).
  async loadInstalled() {
    const kept = await inStore(this.store, "readonly", (store) => store.get(this.model));
    if (!kept) return;
    try {
      this.swap(kept.ref, await this.verify(kept.ref, new Uint8Array(kept.data)));
      this.emit("installed", { version: kept.ref.version, from: "cache" });
    } catch (error) {
      await inStore(this.store, "readwrite", (store) => store.delete(this.model));
      this.emit("refused", { version: kept.ref.version, message: `kept model dropped: ${error.message}` });
    }
  }

  // One document read; downloads only when the model this device should run differs from the installed one.
  async checkForUpdate() {
    const snapshot = await getDoc(doc(this.db, this.config.paths.pointer));
    this.stats.pointerReads += 1;
    if (!snapshot.exists()) { this.emit("no_model", {}); return null; }
    this.settings = deviceSettings(this.config.client, snapshot.data().client, this.config.client_per_model);
    const wanted = await modelForDevice(snapshot.data(), this.deviceId);
    if (!wanted) { this.emit("no_model", {}); return null; }
    const current = this.active?.ref;
    if (current && current.version === wanted.version && current.sha256 === wanted.sha256) return null;
    const identity = `${wanted.version}:${wanted.sha256}:${wanted.signature}`;
    if (this.refused.has(identity)) return null; // refused before: not fetched again
    try {
      this.checkSupported(wanted);
      const data = new Uint8Array(await getBytes(ref(this.storage, wanted.path)));
      this.stats.downloads += 1;
      const compiled = await this.verify(wanted, data);
      await inStore(this.store, "readwrite", (store) => store.put({ ref: wanted, data: data.buffer }, this.model));
      this.swap(wanted, compiled);
      this.emit("installed", { version: wanted.version, from: "download" });
      return wanted;
    } catch (error) {
      if (!(error instanceof ModelRefused)) throw error; // offline or a broken endpoint: try at the next poll
      this.refused.add(identity);
      localStorage.setItem(this.key("refused"), JSON.stringify([...this.refused]));
      this.emit("refused", { version: wanted.version, reason: error.reason, message: error.message });
      return null;
    }
  }

  checkSupported(wanted) {
    if ((wanted.min_sdk_version ?? 1) > this.config.sdk_contract_version) {
      throw new ModelRefused(wanted.version, "unsupported",
        `needs SDK contract ${wanted.min_sdk_version}, this app has ${this.config.sdk_contract_version}`);
    }
    if (!SUPPORTED_INPUT_DTYPES.includes(wanted.input.dtype) || wanted.input.channels !== CHANNELS) {
      throw new ModelRefused(wanted.version, "unsupported",
        `takes ${wanted.input.channels}-channel ${wanted.input.dtype}; this app feeds 3-channel uint8 RGB`);
    }
  }

  // The compiled model if `data` is exactly what `wanted` promised (client_sdk/contract.py's checks).
  async verify(wanted, data) {
    const refuse = (reason, message) => { throw new ModelRefused(wanted.version, reason, message); };
    this.checkSupported(wanted);
    if (data.byteLength !== wanted.size) refuse("size_mismatch", `${data.byteLength} bytes, the pointer promised ${wanted.size}`);
    const digest = hex(await crypto.subtle.digest("SHA-256", data));
    if (digest !== wanted.sha256) refuse("digest_mismatch", `sha256 ${digest}, the pointer promised ${wanted.sha256}`);
    let signature;
    try { signature = base64Bytes(wanted.signature); } catch { refuse("bad_signature", "the signature is not base64"); }
    if (!(await this.signatureValid(signature, data))) {
      refuse("bad_signature", "signature does not verify with the pinned key");
    }
    let description;
    let labels;
    try {
      description = describe(data);
      labels = await packedLabels(data);
    } catch (error) {
      if (error instanceof ModelFileError || error instanceof RangeError || error instanceof TypeError) {
        refuse("contract_violation", error.message);
      }
      throw error;
    }
    if (JSON.stringify(labels) !== JSON.stringify(wanted.labels)) {
      refuse("contract_violation", `packed labels ${JSON.stringify(labels)}, the pointer says ${JSON.stringify(wanted.labels)}`);
    }
    const expected = [BATCH, wanted.input.height, wanted.input.width, wanted.input.channels];
    if (JSON.stringify(description.input.declaredShape) !== JSON.stringify(expected)) {
      refuse("contract_violation", `input tensor declared ${JSON.stringify(description.input.declaredShape)}, ` +
        `the pointer says ${JSON.stringify(expected)} (a browser runs only a fixed batch of ${BATCH})`);
    }
    let compiled;
    try {
      compiled = await loadAndCompile(data, { accelerator: "wasm" });
    } catch (error) {
      refuse("unloadable", `LiteRT.js cannot load it: ${error.message}`);
    }
    const [input] = compiled.getInputDetails();
    const [output] = compiled.getOutputDetails();
    if (input.dtype !== wanted.input.dtype) refuse("contract_violation", `input is ${input.dtype}, the pointer says ${wanted.input.dtype}`);
    const outputShape = Array.from({ length: Object.keys(output.shape).length }, (_, i) => output.shape[i]);
    if (outputShape.length !== 2 || outputShape[1] !== labels.length) {
      refuse("contract_violation", `output tensor ${JSON.stringify(outputShape)} for ${labels.length} labels`);
    }
    const model = { compiled, description, labels, inputDtype: input.dtype };
    const scores = await this.scores(model, new Uint8Array(wanted.input.height * wanted.input.width * CHANNELS), wanted);
    if (!scores.every(Number.isFinite)) refuse("unloadable", "inference gave non-finite scores");
    return model;
  }

  swap(ref, model) {
    if (this.active && this.active.compiled !== model.compiled) this.active.compiled.delete();
    this.active = { ref, ...model };
  }

  async scores(model, pixels, wanted) {
    const input = new Tensor(pixels, [BATCH, wanted.input.height, wanted.input.width, CHANNELS]);
    try {
      const [result] = await model.compiled.run([input]);
      const raw = result.toTypedArray();
      result.delete();
      const { scale, zeroPoint } = model.description.output;
      // uint8 scores dequantized as client_sdk/runtime.py does; a float output is used as it is
      return Array.from(raw, (value) => (raw instanceof Float32Array || scale === 0 ? value : (value - zeroPoint) * scale));
    } finally {
      input.delete();
    }
  }

  // RGB pixels of `source` (an <img>, ImageBitmap, <video> or canvas) at the model's input size.
  pixels(source) {
    const { height, width } = this.active.ref.input;
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.imageSmoothingQuality = "medium"; // bilinear, as the Python SDK resizes (a no-op at the input size)
    context.drawImage(source, 0, 0, width, height);
    const rgba = context.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * CHANNELS);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i]; rgb[j + 1] = rgba[i + 1]; rgb[j + 2] = rgba[i + 2];
    }
    return rgb;
  }

  // {id, label, confidence, model_version, latency_ms, capture, capture_reason}; queues a capture per the policy.
  async classify(source) {
    if (!this.active) throw new Error(`no verified model of ${this.model} is installed yet`);
    const { ref: current } = this.active;
    const started = performance.now();
    const scores = await this.scores(this.active, this.pixels(source), current);
    const latencyMs = performance.now() - started;
    let top = 0;
    scores.forEach((score, i) => { if (score > scores[top]) top = i; });
    const prediction = {
      id: predictionId(), label: current.labels[top], confidence: Math.min(1, Math.max(0, scores[top])),
      model_version: current.version, latency_ms: latencyMs, capture: null, capture_reason: null, source,
    };
    const reason = captureReason(prediction.confidence, Math.random(), this.settings);
    if (reason) await this.capture(prediction, source, reason);
    return prediction;
  }

  // The user's verdict: sends the feedback document; a wrong prediction not yet captured is uploaded as a
  // user_report capture (within the budget), which the confirmed label turns into a training image.
  async report(prediction, trueLabel) {
    const correct = trueLabel === prediction.label;
    if (!correct && !prediction.capture) await this.capture(prediction, prediction.source, CaptureReason.USER_REPORT);
    const report = {
      uid: this.uid, model_version: prediction.model_version, predicted_label: prediction.label,
      confidence: prediction.confidence, correct, true_label: trueLabel, sent_at: serverTimestamp(),
    };
    if (prediction.capture) report.capture = prediction.capture;
    await setDoc(doc(this.db, `${this.config.paths.feedback}/${prediction.id}`), report);
    this.emit("reported", { id: prediction.id, correct, capture: prediction.capture });
    return report;
  }

  // Re-encodes the pixels (no EXIF or other metadata leaves the device), longest side capped, then uploads.
  async capture(prediction, source, reason) {
    const [contentType, extension] = CONTENT_TYPES[this.settings.capture_format];
    const width = source.naturalWidth ?? source.videoWidth ?? source.width;
    const height = source.naturalHeight ?? source.videoHeight ?? source.height;
    const shrink = Math.min(1, this.settings.capture_max_side / Math.max(width, height));
    const canvas = new OffscreenCanvas(Math.max(1, Math.round(width * shrink)), Math.max(1, Math.round(height * shrink)));
    canvas.getContext("2d").drawImage(source, 0, 0, canvas.width, canvas.height);
    const blob = await canvas.convertToBlob({ type: contentType, quality: JPEG_QUALITY });
    const today = utcToday();
    const day = JSON.parse(localStorage.getItem(this.key("budget")) ?? "null");
    const after = spend(day, today, blob.size, this.settings, reason);
    if (!after) { this.emit("over_budget", { reason }); return null; }
    localStorage.setItem(this.key("budget"), JSON.stringify(after));
    const name = `${this.config.paths.uploads}/${this.uid}/${prediction.id}.${extension}`;
    await uploadBytes(ref(this.storage, name), blob, {
      contentType,
      customMetadata: {
        predicted_label: prediction.label, confidence: prediction.confidence.toFixed(6),
        model_version: prediction.model_version, capture_reason: reason,
      },
    });
    prediction.capture = name;
    prediction.capture_reason = reason;
    this.emit("captured", { name, reason });
    return name;
  }
}
