// Live totals of a draft's line editor: as the clerk types, the lines are sent to the
// server, which computes them as finalization will (billing.services.draft_totals).
"use strict";
// The admin loads its scripts in the page's head: wait for the form.
document.addEventListener("DOMContentLoaded", function () {
  const box = document.getElementById("live-totals");
  const form = document.getElementById("invoice_form");
  if (!box || !form) return;
  let timer = null;
  function show(id, text) { document.getElementById(id).textContent = text || ""; }
  function refresh() {
    const body = new FormData(form);
    fetch(box.dataset.url, { method: "POST", body: body, credentials: "same-origin" })
      .then((answer) => answer.json())
      .then((totals) => {
        const error = document.getElementById("live-error");
        if (totals.error) {
          error.hidden = false;
          error.textContent = totals.error;
          return;
        }
        error.hidden = true;
        show("live-net", totals.net);
        show("live-vat", totals.vat);
        show("live-gross", totals.gross);
        show("live-groups", totals.groups.join(" · "));
      })
      .catch(() => {});
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 300); });
  form.addEventListener("change", refresh);
  refresh();
});
