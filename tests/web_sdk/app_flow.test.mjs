// An app on the local stack with the official Firebase Web SDK (npm `firebase`, pinned in package.json).
//
// What every Android/iOS/Web app of the product does, as an app does it (README: "Apps on the Firebase SDKs"):
// a registered device signs in with its custom token; it uploads a capture to
// uploads/{model}/{uid}/{predictionId}.png with the custom metadata on_upload reads; it reports the
// prediction's outcome as models/{model}/feedback/{predictionId}; it reads the pointer models/{model} and
// downloads the production model, checking its size, sha256 and Ed25519 signature. A labeller and an
// operator (custom-claim roles) see what on_upload and on_feedback made of it. Then every operation the
// rules matrix forbids (tests/integration/rules_matrix.py) is attempted through the SDK and must be refused.
//
// Run by tests/integration/test_web_sdk.py, which starts the stack, seeds the model and writes the scenario:
//   node tests/web_sdk/app_flow.test.mjs <scenario.json>
// Endpoints come from the stack's client environment: FIREBASE_AUTH_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST,
// STORAGE_EMULATOR_HOST (its Firebase Storage endpoint serves /v0/b/{bucket}/o…), EDGELOOP_PROJECT_ID,
// EDGELOOP_BUCKET, and EDGELOOP_WEB_API_KEY (any key: the Auth emulator checks none).

import assert from "node:assert/strict";
import { createHash, createPublicKey, randomUUID, verify as verifySignature } from "node:crypto";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { deleteApp, initializeApp } from "firebase/app";
import {
  connectAuthEmulator, getAuth, signInAnonymously, signInWithCustomToken, signInWithEmailAndPassword,
} from "firebase/auth";
import {
  collection, connectFirestoreEmulator, deleteDoc, doc, getDoc, getDocs, getFirestore, query, serverTimestamp, setDoc,
  setLogLevel, updateDoc, where,
} from "firebase/firestore";
import {
  connectStorageEmulator, deleteObject, getBytes, getDownloadURL, getMetadata, getStorage, list, ref, updateMetadata,
  uploadBytes, uploadBytesResumable,
} from "firebase/storage";

assert.ok(process.argv[2], "usage: node tests/web_sdk/app_flow.test.mjs <scenario.json> (written by tests/integration/test_web_sdk.py)");
const scenario = JSON.parse(readFileSync(process.argv[2], "utf8"));
const env = (name) => {
  const value = process.env[name];
  assert.ok(value, `${name} is not set (run this file through tests/integration/test_web_sdk.py)`);
  return value;
};
const [authHost, firestoreHost] = [env("FIREBASE_AUTH_EMULATOR_HOST"), env("FIRESTORE_EMULATOR_HOST")];
const storageUrl = new URL(env("STORAGE_EMULATOR_HOST"));
const config = { apiKey: env("EDGELOOP_WEB_API_KEY"), projectId: env("EDGELOOP_PROJECT_ID"), storageBucket: env("EDGELOOP_BUCKET") };
const { model } = scenario;
const WAIT_MS = 60_000;
setLogLevel("error"); // a refused write is logged as a warning: hundreds are refused on purpose below

// One Firebase app per person, as on their own phone: its own sign-in, Storage and Firestore.
const apps = [];
function firebaseApp(name) {
  const app = initializeApp(config, name);
  apps.push(app);
  const auth = getAuth(app);
  connectAuthEmulator(auth, `http://${authHost}`, { disableWarnings: true });
  const storage = getStorage(app);
  connectStorageEmulator(storage, storageUrl.hostname, Number(storageUrl.port));
  storage.maxOperationRetryTime = 10_000; // a refusal is never retried; a broken endpoint fails fast
  storage.maxUploadRetryTime = 10_000;
  const [host, port] = firestoreHost.split(":");
  const db = getFirestore(app);
  connectFirestoreEmulator(db, host, Number(port));
  return { app, auth, storage, db };
}

async function eventually(probe, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${WAIT_MS / 1000}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");
// The matrix's marker for "the server's time of the write" becomes the SDK's server timestamp.
const withServerTime = (data) => Object.fromEntries(
  Object.entries(data).map(([key, value]) => [key, value === scenario.server_time ? serverTimestamp() : value]));
const predictionId = () => randomUUID().replaceAll("-", ""); // as client_sdk: uuid4().hex

const device = firebaseApp("device");
const captures = [];

try {
  await test("a registered device signs in with its custom token and carries its role and model", async () => {
    const { user } = await signInWithCustomToken(device.auth, scenario.device.custom_token);
    assert.equal(user.uid, scenario.device.uid);
    const { claims } = await user.getIdTokenResult();
    assert.equal(claims.role, "device");
    assert.equal(claims.model, model);
  });

  await test("a capture upload with the product's custom metadata is registered by on_upload", async () => {
    const uid = device.auth.currentUser.uid;
    for (const capture of scenario.captures) { // a small one (multipart) and one over 256 KiB (resumable)
      const id = predictionId();
      const name = `uploads/${model}/${uid}/${id}.png`;
      const bytes = readFileSync(capture.file);
      const customMetadata = {
        predicted_label: capture.predicted_label, confidence: capture.confidence.toFixed(6),
        model_version: scenario.version, capture_reason: capture.capture_reason,
      };
      const target = ref(device.storage, name);
      const { metadata } = bytes.length > 256 * 1024
        ? await uploadBytesResumable(target, bytes, { contentType: "image/png", customMetadata })
        : await uploadBytes(target, bytes, { contentType: "image/png", customMetadata });
      assert.equal(metadata.fullPath, name);
      assert.equal(metadata.size, bytes.length);
      assert.equal(metadata.contentType, "image/png");
      assert.deepEqual(metadata.customMetadata, customMetadata);
      captures.push({ id, name, ...capture });
    }
    assert.ok(captures.some((c) => readFileSync(c.file).length > 256 * 1024), "one capture needs a resumable upload");

    // A labeller (role claim "labeller") may read what was ingested.
    const labeller = firebaseApp("labeller");
    await signInWithEmailAndPassword(labeller.auth, scenario.labeller.email, scenario.labeller.password);
    for (const capture of captures) {
      const images = collection(labeller.db, `models/${model}/images`);
      const image = await eventually(async () => {
        const found = await getDocs(query(images, where("object", "==", capture.name)));
        return found.empty ? null : found.docs[0].data();
      }, `on_upload registering ${capture.name}`);
      assert.equal(image.uid, uid);
      assert.equal(image.capture_reason, capture.capture_reason);
    }
  });

  await test("a feedback report under the prediction's id is counted by on_feedback", async () => {
    const capture = captures[0];
    const report = {
      uid: device.auth.currentUser.uid, model_version: scenario.version, predicted_label: capture.predicted_label,
      confidence: capture.confidence, correct: false, true_label: capture.true_label, capture: capture.name,
      sent_at: serverTimestamp(), // required: the server's time of the write (the stack finds lost reports by it)
    };
    const path = `models/${model}/feedback/${capture.id}`;
    await setDoc(doc(device.db, path), report);
    await assert.rejects(setDoc(doc(device.db, path), { ...report, correct: true, true_label: capture.predicted_label }),
      { code: "permission-denied" }, "one report per prediction");

    // An operator (role claim "operator") may read every document.
    const operator = firebaseApp("operator");
    await signInWithEmailAndPassword(operator.auth, scenario.operator.email, scenario.operator.password);
    const stored = await eventually(async () => {
      const snapshot = await getDoc(doc(operator.db, path));
      return typeof snapshot.data()?.counted === "boolean" ? snapshot.data() : null;
    }, `on_feedback deciding on ${path}`);
    assert.equal(stored.counted, true);
    assert.ok(stored.received_at, "on_feedback stamps received_at");
  });

  await test("the pointer names the production model; its download matches size, sha256 and signature", async () => {
    const pointer = (await getDoc(doc(device.db, `models/${model}`))).data();
    const production = pointer.production;
    assert.equal(production.version, scenario.version);
    assert.equal(production.path, `models/${model}/${production.version}/model.tflite`);

    const bytes = Buffer.from(await getBytes(ref(device.storage, production.path)));
    assert.equal(bytes.length, production.size);
    assert.equal(sha256(bytes), production.sha256);
    const key = createPublicKey(scenario.public_key_pem);
    assert.ok(verifySignature(null, bytes, key, Buffer.from(production.signature, "base64")), "Ed25519 signature");
    assert.ok(!verifySignature(null, Buffer.concat([bytes, Buffer.from([0])]), key,
      Buffer.from(production.signature, "base64")), "a changed model does not verify");

    // A download URL carries its own token: fetchable without signing in (as an <img> or a plain GET).
    const url = await getDownloadURL(ref(device.storage, production.path));
    const fetched = await fetch(url);
    assert.equal(fetched.status, 200);
    assert.equal(sha256(Buffer.from(await fetched.arrayBuffer())), production.sha256);
  });

  await test("every operation the rules matrix forbids is refused", async () => {
    const owner = firebaseApp("owner");
    await signInWithCustomToken(owner.auth, scenario.owner_custom_token);
    assert.equal(owner.auth.currentUser.uid, scenario.owner_uid);
    const other = firebaseApp("other");
    await signInAnonymously(other.auth); // any other signed-in user
    const people = { owner, other, anonymous: firebaseApp("anonymous") }; // anonymous: never signed in
    const upload = readFileSync(scenario.captures[0].file);

    const attempts = {
      storage: {
        get: (p, c) => [() => getMetadata(ref(p.storage, c.name)), () => getBytes(ref(p.storage, c.name))],
        list: (p, c) => [() => list(ref(p.storage, c.folder), { maxResults: 10 })],
        create: (p, c) => [() => uploadBytes(ref(p.storage, c.name), upload, { contentType: c.content_type, customMetadata: c.metadata })],
        update: (p, c) => [
          () => uploadBytes(ref(p.storage, c.name), upload, { contentType: c.content_type, customMetadata: c.metadata }),
          () => updateMetadata(ref(p.storage, c.name), { customMetadata: { label: "3" } }),
        ],
        delete: (p, c) => [() => deleteObject(ref(p.storage, c.name))],
      },
      firestore: {
        get: (p, c) => [() => getDoc(doc(p.db, c.path))],
        list: (p, c) => [() => getDocs(collection(p.db, c.collection))],
        create: (p, c) => [() => setDoc(doc(p.db, c.collection, c.document_id), withServerTime(c.data))],
        update: (p, c) => [() => updateDoc(doc(p.db, c.path), withServerTime(c.data))],
        delete: (p, c) => [() => deleteDoc(doc(p.db, c.path))],
      },
    };
    const expected = (c) => c.store === "firestore" ? "permission-denied"
      : c.principal === "anonymous" ? "storage/unauthenticated" : "storage/unauthorized";

    const wrong = [];
    const batch = 4; // a few at a time, as one app does (the local Storage endpoint answers one request at a time)
    for (let start = 0; start < scenario.refused.length; start += batch) {
      await Promise.all(scenario.refused.slice(start, start + batch).map(async (c) => {
        for (const attempt of attempts[c.store][c.operation](people[c.principal], c)) {
          try {
            await attempt();
            wrong.push(`${c.principal} ${c.operation} ${c.store} ${c.path ?? c.name ?? c.folder}: allowed`);
          } catch (error) {
            if (error.code !== expected(c)) {
              wrong.push(`${c.principal} ${c.operation} ${c.store} ${c.path ?? c.name ?? c.folder}: ${error.code} ${error.message}`);
            }
          }
        }
      }));
    }
    assert.ok(scenario.refused.length > 0);
    assert.deepEqual(wrong, [], `${wrong.length} of ${scenario.refused.length} forbidden operations were not refused`);
    console.log(`refused: ${scenario.refused.length} forbidden operations`);
  });
} finally {
  await Promise.all(apps.map((app) => deleteApp(app)));
}
