// Card entry, end-to-end encrypted: the card number, expiry and CVC are
// encrypted here with WebCrypto (RSA-OAEP, SHA-256) under the vault's current
// card-entry public key; only the ciphertext and the key id are submitted.
// Format (payments/vault/entry.py): "v1.<kid>.<base64url(RSA-OAEP(json))>", the JSON
// holding the card and the form's one-time nonce (data-nonce),
// OAEP label "tillit.card-entry.v1|<kid>". The inputs have no name attribute,
// so the browser never submits them in the clear, even if this script fails.
// Its two messages come translated from the page (data-insecure-message and
// data-failed-message on the status element), English when a page gives none.
//
// Any form with data-processing-label (both paying forms, the card page's form)
// shows that it is working once submitted: its button is disabled and relabelled,
// so a payment that takes a couple of seconds is not sent twice by a second click
// (the idempotency key makes a second one harmless anyway).
(function () {
  "use strict";

  function setProcessing(target, on) {
    var button = target.querySelector("button[type=submit]");
    if (!button) {
      return;
    }
    if (on) {
      if (!button.dataset.label) {
        button.dataset.label = button.textContent;
      }
      button.textContent = target.dataset.processingLabel || button.textContent;
      button.disabled = true;
      target.setAttribute("aria-busy", "true");
    } else {
      button.textContent = button.dataset.label || button.textContent;
      button.disabled = false;
      target.removeAttribute("aria-busy");
    }
  }

  document.querySelectorAll("form[data-processing-label]").forEach(function (target) {
    if (target.id === "card-entry") {
      return; // processed below, once its card is encrypted
    }
    target.addEventListener("submit", function (event) {
      if (target.getAttribute("aria-busy") === "true") {
        event.preventDefault();
        return;
      }
      setProcessing(target, true);
    });
  });
  // A page restored from the back/forward cache must be usable again.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) {
      document.querySelectorAll("form[aria-busy]").forEach(function (target) {
        setProcessing(target, false);
      });
    }
  });

  var form = document.getElementById("card-entry");
  if (!form) {
    return;
  }
  var status = form.querySelector("[data-card-status]");
  var encoder = new TextEncoder();

  function fromBase64(text) {
    var raw = atob(text);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i += 1) {
      bytes[i] = raw.charCodeAt(i);
    }
    return bytes;
  }

  function toBase64Url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i += 1) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function value(name) {
    var input = form.querySelector('[data-card-field="' + name + '"]');
    return input ? input.value.trim() : "";
  }

  async function encryptCard() {
    var kid = form.dataset.kid;
    var key = await window.crypto.subtle.importKey(
      "spki",
      fromBase64(form.dataset.publicKey),
      { name: "RSA-OAEP", hash: "SHA-256" },
      false,
      ["encrypt"]
    );
    // The form's one-time nonce travels inside the ciphertext: the server accepts the
    // payload once, from this session only (payments/vault/entry.py).
    var plaintext = encoder.encode(
      JSON.stringify({
        number: value("number"),
        expiry: value("expiry"),
        cvc: value("cvc"),
        nonce: form.dataset.nonce || ""
      })
    );
    var ciphertext = await window.crypto.subtle.encrypt(
      { name: "RSA-OAEP", label: encoder.encode("tillit.card-entry.v1|" + kid) },
      key,
      plaintext
    );
    return "v1." + kid + "." + toBase64Url(ciphertext);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") {
      return;
    }
    if (!window.crypto || !window.crypto.subtle) {
      status.textContent = status.dataset.insecureMessage ||
        "This page must be opened over HTTPS to encrypt your card. Nothing was sent.";
      return;
    }
    setProcessing(form, true);
    encryptCard().then(
      function (payload) {
        form.elements.namedItem("card_payload").value = payload;
        form.querySelectorAll("[data-card-field]").forEach(function (input) {
          input.value = "";
        });
        form.submit();
      },
      function () {
        setProcessing(form, false);
        status.textContent = status.dataset.failedMessage ||
          "Your browser could not encrypt the card. Nothing was sent.";
      }
    );
  });
})();
