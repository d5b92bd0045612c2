// The page: wires the Edgeloop web client (edgeloop.js) to the picker, the camera and the feedback buttons.

import { EdgeloopWebClient } from "./edgeloop.js";

const $ = (id) => document.getElementById(id);
const MAX_EVENTS = 50;

function show(kind, text) {
  const item = document.createElement("li");
  item.dataset.kind = kind;
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  $("events").prepend(item);
  while ($("events").children.length > MAX_EVENTS) $("events").lastChild.remove();
}

function onEvent(event) {
  const texts = {
    signed_in: () => `signed in as ${event.uid}`,
    installed: () => `model ${event.version} installed (${event.from === "cache" ? "kept from last time" : "downloaded and verified"})`,
    refused: () => `refused ${event.message}`,
    no_model: () => "no model is published yet",
    captured: () => `captured (${event.reason}) as ${event.name}`,
    over_budget: () => `not captured (${event.reason}): today's capture budget is spent`,
    reported: () => `feedback sent (${event.correct ? "right" : "corrected"})`,
  };
  show(event.kind, (texts[event.kind] ?? (() => event.kind))());
  if (event.kind === "installed") {
    $("installed-version").textContent = event.version;
    document.body.dataset.state = "ready";
  }
}

let client;
let last = null;

async function classify(source) {
  if (!client.active) { show("error", "no model is installed yet"); return; }
  $("feedback-status").textContent = "";
  last = await client.classify(source);
  $("result").hidden = false;
  $("label").textContent = last.label;
  $("confidence").textContent = `${(100 * last.confidence).toFixed(1)}%`;
  $("confidence").dataset.value = String(last.confidence);
  $("prediction-version").textContent = last.model_version;
  $("latency").textContent = `${last.latency_ms.toFixed(1)} ms`;
  $("captured").textContent = last.capture ? `Captured as a ${last.capture_reason.replace("_", " ")} case.` : "";
  const select = $("true-label");
  select.replaceChildren(...client.active.ref.labels.map((label) => new Option(label, label)));
  select.value = last.label;
  document.body.dataset.predictions = String(Number(document.body.dataset.predictions ?? 0) + 1);
}

async function report(trueLabel) {
  if (!last) return;
  await client.report(last, trueLabel);
  $("feedback-status").textContent = trueLabel === last.label ? "Thanks!" : `Thanks: sent as ${trueLabel}.`;
  document.body.dataset.capture = last.capture ?? "";
  document.body.dataset.reported = last.id;
}

function guarded(action) {
  return async (...args) => {
    try { await action(...args); } catch (error) { show("error", error.message); console.warn(error); }
  };
}

async function poll() {
  await guarded(() => client.checkForUpdate())();
  document.body.dataset.polls = String(client.stats.pointerReads);
  setTimeout(poll, client.config.poll_interval_s * 1000);
}

async function main() {
  const config = await (await fetch("./config.json")).json();
  $("model-name").textContent = config.model;
  client = new EdgeloopWebClient(config, { onEvent });
  await client.start();
  $("uid").textContent = client.uid;
  $("status").textContent = config.emulators ? "local stack" : config.firebase.projectId;
  window.edgeloop = client; // for the console (and the browser test)
  $("picker").addEventListener("change", guarded(async () => {
    const file = $("picker").files[0];
    if (!file) return;
    const image = $("preview");
    image.src = URL.createObjectURL(file);
    await image.decode();
    await classify(image);
  }));
  $("camera").addEventListener("click", guarded(async () => {
    const video = $("video");
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    await video.play();
    video.hidden = false;
    $("preview").hidden = true;
    $("snap").hidden = false;
  }));
  $("snap").addEventListener("click", guarded(() => classify($("video"))));
  $("check").addEventListener("click", guarded(() => client.checkForUpdate()));
  $("right").addEventListener("click", guarded(() => report(last.label)));
  $("correct").addEventListener("click", guarded(() => report($("true-label").value)));
  if (!client.active) document.body.dataset.state = "waiting";
  await poll();
}

guarded(main)();
