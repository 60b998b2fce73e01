// botgate proof of work: find a decimal counter n such that sha256(challenge + n), in hex,
// starts with `difficulty` zeros. Digests run in batches so WebCrypto's promises overlap.
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
  const { challenge, difficulty } = event.data;
  const encoder = new TextEncoder();
  for (let base = 0; ; base += BATCH) {
    const digests = await Promise.all(
      Array.from({ length: BATCH }, (_, i) => crypto.subtle.digest("SHA-256", encoder.encode(challenge + (base + i))))
    );
    for (let i = 0; i < BATCH; i++) {
      if (leadingZeros(new Uint8Array(digests[i]), difficulty)) {
        self.postMessage({ done: true, solution: String(base + i), tried: base + i + 1 });
        return;
      }
    }
    self.postMessage({ done: false, tried: base + BATCH });
  }
};
