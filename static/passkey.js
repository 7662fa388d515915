// Passkeys (WebAuthn). Each page works without script (passwords and codes stay); with it,
// a form marked `data-passkey` gets its button, runs the browser's ceremony, and posts the
// browser's answer in its `credential` field. Challenges come from the server: embedded in
// the page (`#passkey-options`) or, to sign in, fetched when needed. The server checks
// everything; this file only carries bytes between the browser and the form.
"use strict";

const base64url = {
  decode(text) {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

const withIds = (list) => (list || []).map((item) => ({ ...item, id: base64url.decode(item.id) }));

function creationOptions(options) {
  const key = options.publicKey;
  return {
    ...key,
    challenge: base64url.decode(key.challenge),
    user: { ...key.user, id: base64url.decode(key.user.id) },
    excludeCredentials: withIds(key.excludeCredentials),
  };
}

function requestOptions(options) {
  const key = options.publicKey;
  return { ...key, challenge: base64url.decode(key.challenge), allowCredentials: withIds(key.allowCredentials) };
}

function registration(credential) {
  const response = credential.response;
  return {
    id: credential.id,
    rawId: base64url.encode(credential.rawId),
    type: credential.type,
    response: {
      attestationObject: base64url.encode(response.attestationObject),
      clientDataJSON: base64url.encode(response.clientDataJSON),
      transports: response.getTransports ? response.getTransports() : [],
    },
    extensions: credential.getClientExtensionResults(),
  };
}

function assertion(credential) {
  const response = credential.response;
  return {
    id: credential.id,
    rawId: base64url.encode(credential.rawId),
    type: credential.type,
    response: {
      authenticatorData: base64url.encode(response.authenticatorData),
      clientDataJSON: base64url.encode(response.clientDataJSON),
      signature: base64url.encode(response.signature),
      userHandle: response.userHandle ? base64url.encode(response.userHandle) : null,
    },
    extensions: credential.getClientExtensionResults(),
  };
}

function say(form, message) {
  const status = form.querySelector("[data-passkey-status]");
  if (status) status.textContent = message;
}

function explain(error) {
  if (error && error.name === "NotAllowedError") {
    return "No passkey was used: the request was cancelled or timed out. Try again, or use your password.";
  }
  if (error && error.name === "InvalidStateError") {
    return "This device already holds a passkey for your account.";
  }
  return "Your browser could not use a passkey here. Try again, or use your password.";
}

function submit(form, ceremony, answer) {
  form.elements.ceremony.value = ceremony;
  form.elements.credential.value = JSON.stringify(answer);
  form.submit();
}

// A ceremony whose challenge is in the page: registering, or the second step of a sign-in.
function embedded(form, kind) {
  const source = document.getElementById("passkey-options");
  if (!source) return;
  const options = JSON.parse(source.textContent);
  form.querySelector("[data-passkey-start]").addEventListener("click", async () => {
    say(form, "Follow your browser's instructions…");
    try {
      if (kind === "register") {
        const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
        submit(form, form.elements.ceremony.value, registration(credential));
      } else {
        const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
        submit(form, form.elements.ceremony.value, assertion(credential));
      }
    } catch (error) {
      say(form, explain(error));
    }
  });
}

// Signing in without an email: a fresh challenge for each attempt, from the server.
async function challenge(form) {
  const body = new URLSearchParams({ csrf_token: form.elements.csrf_token.value });
  const response = await fetch(form.dataset.optionsUrl, { method: "POST", body, credentials: "same-origin" });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const message = problem.message || "This page has expired. Reload it and try again.";
    throw Object.assign(new Error(message), { name: "ServerRefused" });
  }
  return response.json();
}

function signIn(form) {
  let autofill = null;
  const getWith = async (mediation, signal) => {
    const { ceremony, options } = await challenge(form);
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options), mediation, signal });
    submit(form, ceremony, assertion(credential));
  };
  form.querySelector("[data-passkey-start]").addEventListener("click", async () => {
    if (autofill) autofill.abort();
    say(form, "Follow your browser's instructions…");
    try {
      await getWith(undefined, undefined);
    } catch (error) {
      say(form, error.name === "ServerRefused" ? error.message : explain(error));
    }
  });
  // Autofill: the email field offers the passkeys this browser holds for the site.
  if (PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
      if (!available) return;
      autofill = new AbortController();
      getWith("conditional", autofill.signal).catch(() => {});
    });
  }
}

if (window.PublicKeyCredential) {
  document.querySelectorAll("form[data-passkey]").forEach((form) => {
    const kind = form.dataset.passkey;
    form.hidden = false;
    if (kind === "sign-in") signIn(form);
    else embedded(form, kind);
  });
}
