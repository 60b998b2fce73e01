// botgate proof of work: find a decimal counter n such that sha256(challenge + n), in hex,
// starts with `difficulty` zeros. Each worker tries start, start + step, …; digests run in
// batches so WebCrypto's promises overlap.
"use strict";
const BATCH = 256;

function leadingZeros(bytes, n) {
  for (let i = 0; i < n; i++) {
    const b = bytes[i >> 1];
    if ((i & 1 ? b & 15 : b >> 4) !== 0) return false;
  }
  return true;
}

self.onmessage = async (event) => {
  const { challenge, difficulty, start, step } = event.data;
  const encoder = new TextEncoder();
  for (let k = 0; ; k += BATCH) {
    const candidates = Array.from({ length: BATCH }, (_, i) => start + (k + i) * step);
    const digests = await Promise.all(
      candidates.map((n) => crypto.subtle.digest("SHA-256", encoder.encode(challenge + n)))
    );
    for (let i = 0; i < BATCH; i++) {
      if (leadingZeros(new Uint8Array(digests[i]), difficulty)) {
        self.postMessage({ done: true, solution: String(candidates[i]), tried: BATCH });
        return;
      }
    }
    self.postMessage({ done: false, tried: BATCH });
  }
};
