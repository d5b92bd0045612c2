// Pure rules of the device contract, as the Python SDK applies them, for the browser app.
//
// The same rules as client_sdk/capture.py (capture_reason, BudgetDay.spend), shared/rollout.py
// (rollout_bucket, model_for_device) and shared/model_settings.py (device_settings), on the same settings: the `client` section of shared/config.py, served
// to the page as config.json by `edgeloop web`, never re-typed here. tests/integration/test_web_app.py runs
// these functions in Chromium on a table of cases and compares every answer with the Python functions'.

export const CaptureReason = Object.freeze({
  LOW_CONFIDENCE: "low_confidence",
  RANDOM_SAMPLE: "random_sample",
  USER_REPORT: "user_report",
});

// "random_sample", "low_confidence" or null; `draw` is uniform in [0, 1). The random draw comes first and
// ignores the confidence, so the random sample is a uniform sample of every prediction (hard ones included).
export function captureReason(confidence, draw, settings) {
  if (draw < settings.capture_sample_rate) return CaptureReason.RANDOM_SAMPLE;
  if (confidence < settings.capture_below_confidence) return CaptureReason.LOW_CONFIDENCE;
  return null;
}

export const emptyDay = (day) => ({ day, count: 0, bytes: 0, sample_count: 0, sample_bytes: 0 });

// The budget day after spending `size` bytes on one more capture taken for `reason`, or null if over budget.
// `today` is the UTC date as YYYY-MM-DD. `random_sample_reserve` captures of the daily count (and the same
// share of the bytes) are held for the random sample until it has used them.
export function spend(day, today, size, settings, reason) {
  const current = day && day.day === today ? day : emptyDay(today);
  const sample = reason === CaptureReason.RANDOM_SAMPLE;
  let heldCount = 0;
  let heldBytes = 0;
  if (!sample) {
    const reserve = Math.min(settings.random_sample_reserve, settings.daily_capture_count);
    // Python's integer floor division (`//`) of non-negative integers
    const reserveBytes = reserve ? Math.floor((settings.daily_capture_bytes * reserve) / settings.daily_capture_count) : 0;
    heldCount = Math.max(0, reserve - current.sample_count);
    heldBytes = Math.max(0, reserveBytes - current.sample_bytes);
  }
  if (current.count + 1 + heldCount > settings.daily_capture_count
      || current.bytes + size + heldBytes > settings.daily_capture_bytes) {
    return null;
  }
  return {
    day: current.day, count: current.count + 1, bytes: current.bytes + size,
    sample_count: current.sample_count + (sample ? 1 : 0), sample_bytes: current.sample_bytes + (sample ? size : 0),
  };
}

export const utcToday = (now = new Date()) => now.toISOString().slice(0, 10);

const BUCKET_BYTES = 8; // the first 64 bits of the digest, read big-endian

// The device's stable position in [0, 100) for this model's rollouts: sha256(model + "\0" + deviceId).
export async function rolloutBucket(deviceId, model) {
  if (!deviceId) throw new Error("a device id is needed to place the device in a rollout");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${model}\0${deviceId}`)));
  let value = 0n;
  for (const byte of digest.subarray(0, BUCKET_BYTES)) value = (value << 8n) | BigInt(byte);
  return (Number(value) / 2 ** (8 * BUCKET_BYTES)) * 100;
}

// The model this device should run: the canary if offered to its bucket, else production (or null).
export async function modelForDevice(pointer, deviceId) {
  const candidate = pointer.rollout?.candidate;
  if (candidate && (await rolloutBucket(deviceId, pointer.model)) < (pointer.rollout.percent ?? 0)) return candidate;
  return pointer.production ?? null;
}

// The settings for one model, as shared/model_settings.py's device_settings decides them: the capture
// defaults the model publishes on its pointer (`client`) replace the served defaults, field by field, for
// the fields `perModel` names (each with its JSON schema from shared/config.py's Client); if any of them is
// not a valid value, the served defaults stay whole (a pointer from a newer server must not stop the app).
export function deviceSettings(defaults, published, perModel) {
  const fields = Object.entries(published ?? {}).filter(([name]) => Object.hasOwn(perModel, name));
  if (!fields.length) return defaults;
  return fields.every(([name, value]) => valid(value, perModel[name])) ? { ...defaults, ...Object.fromEntries(fields) } : defaults;
}

function valid(value, schema) {
  if (schema.type === "string") return typeof value === "string" && (!schema.pattern || new RegExp(schema.pattern).test(value));
  if (typeof value !== "number" || !Number.isFinite(value)) return false;
  if (schema.type === "integer" && !Number.isInteger(value)) return false;
  return !(value < schema.minimum || value > schema.maximum || value <= schema.exclusiveMinimum
    || value >= schema.exclusiveMaximum);
}
