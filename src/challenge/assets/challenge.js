// botgate interstitial: runs the proof of work in Web Workers, shows progress, then hands the
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
  // One worker per core (up to four), each on its own stride of counters.
  const count = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2));
  const workers = [];
  let tried = 0;
  let finished = false;
  const onMessage = (event) => {
    const m = event.data;
    if (finished) return;
    tried += m.tried;
    bar.value = Math.min(99, Math.round(100 * (1 - Math.exp(-tried / expected))));
    if (!m.done) return;
    finished = true;
    workers.forEach((w) => w.terminate());
    bar.value = 100;
    const ms = Math.round(performance.now() - started);
    status.textContent = `Done in ${(ms / 1000).toFixed(1)} s. Continuing…`;
    const q = new URLSearchParams({ challenge, solution: m.solution, ms: String(ms) });
    if (back) q.set("return", back);
    location.replace("/.well-known/botgate/verify?" + q.toString());
  };
  for (let i = 0; i < count; i++) {
    const w = new Worker("/.well-known/botgate/worker.js");
    w.onerror = () => fail("The check could not run in this browser. Please reload the page.");
    w.onmessage = onMessage;
    w.postMessage({ challenge, difficulty: Number(difficulty), start: i, step: count });
    workers.push(w);
  }
})();
