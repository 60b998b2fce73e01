// botgate WebAuthn step-up: asks the site's backend for assertion options, lets the browser's
// authenticator sign them, and posts the assertion back. The backend verifies it and sets the
// botgate_clearance cookie; then the browser continues to the page it asked for.
"use strict";
(() => {
  const root = document.getElementById("botgate");
  const status = document.getElementById("status");
  const { options, verify, back } = root.dataset;
  const fromB64url = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
  const toB64url = (buf) =>
    btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const fail = (text) => {
    status.textContent = text;
    status.className = "error";
    document.getElementById("fallback").hidden = false;
  };
  document.getElementById("go").addEventListener("click", async () => {
    if (!window.PublicKeyCredential) return fail("This browser has no passkey support.");
    try {
      status.textContent = "Waiting for your passkey…";
      const res = await fetch(options, { method: "POST", credentials: "same-origin" });
      if (!res.ok) return fail("The site could not start the check (" + res.status + ").");
      const o = await res.json();
      const publicKey = Object.assign({}, o.publicKey || o, {
        challenge: fromB64url((o.publicKey || o).challenge),
        allowCredentials: ((o.publicKey || o).allowCredentials || []).map((c) => Object.assign({}, c, { id: fromB64url(c.id) })),
      });
      const cred = await navigator.credentials.get({ publicKey });
      const r = cred.response;
      const body = {
        id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
        response: {
          clientDataJSON: toB64url(r.clientDataJSON), authenticatorData: toB64url(r.authenticatorData),
          signature: toB64url(r.signature), userHandle: r.userHandle ? toB64url(r.userHandle) : null,
        },
      };
      const done = await fetch(verify, {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json" }, body: JSON.stringify(body),
      });
      if (!done.ok) return fail("The passkey was not accepted (" + done.status + ").");
      status.textContent = "Confirmed. Continuing…";
      location.replace(back || "/");
    } catch (e) {
      fail("The passkey check did not complete: " + e.name + ".");
    }
  });
})();
