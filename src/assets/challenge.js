// botgate interstitial: runs the proof of work in a Web Worker, shows progress, then hands the
// solution to /.well-known/botgate/verify, which sets the clearance cookie and sends the browser
// on to the page it first asked for.
"use strict";
(() => {
  const root = document.getElementById("botgate");
  const status = document.getElementById("status");
  const bar = document.getElementById("progress");
  const { challenge, difficulty, back } = root.dataset;
  const fail = (text) => {
    status.textContent = text;
    status.className = "error";
    bar.hidden = true;
  };
  if (!window.Worker || !(window.crypto && crypto.subtle)) {
    fail("This browser cannot run the check (it needs Web Workers and WebCrypto over HTTPS). Please try another browser.");
    return;
  }
  const expected = Math.pow(16, Number(difficulty));
  const started = performance.now();
  const worker = new Worker("/.well-known/botgate/worker.js");
  worker.onerror = () => fail("The check could not run in this browser. Please reload the page.");
  worker.onmessage = (event) => {
    const m = event.data;
    bar.value = Math.min(99, Math.round(100 * (1 - Math.exp(-m.tried / expected))));
    if (!m.done) return;
    bar.value = 100;
    const ms = Math.round(performance.now() - started);
    status.textContent = `Done in ${(ms / 1000).toFixed(1)} s. Continuing…`;
    worker.terminate();
    const q = new URLSearchParams({ challenge, solution: m.solution, ms: String(ms) });
    if (back) q.set("return", back);
    location.replace("/.well-known/botgate/verify?" + q.toString());
  };
  worker.postMessage({ challenge, difficulty: Number(difficulty) });
})();
