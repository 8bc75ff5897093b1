// Progressive enhancement only: every page reads fine without this file.
// 1. Copy buttons (hidden until this script shows them) put their data-copy text on the
//    clipboard and say so in the page's live region.
// 2. Empty form fields are left out of the URL. (Filters are applied with their button, not on
//    change: a select that reloads the page while a keyboard user browses it breaks WCAG 3.2.2.)
"use strict";

function announce(text) {
  const live = document.getElementById("live");
  if (live) live.textContent = text;
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain-HTTP hubs (no secure context): the older selection-based copy.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("copy refused");
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const text = button.dataset.copy;
      try {
        await copyText(text);
        button.textContent = "Copied";
        announce("Copied " + text);
      } catch (err) {
        button.textContent = "Select and copy";
        announce("Could not copy; select the text and copy it by hand");
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
  for (const form of document.querySelectorAll("form[method=get]")) {
    form.addEventListener("submit", () => {
      for (const field of form.elements) {
        if (field.name && field.value === "") {
          field.disabled = true;
          field.dataset.blanked = "";
        }
      }
    });
  }
});

// Coming back through the history cache: give the fields left out back to the form.
window.addEventListener("pageshow", () => {
  for (const field of document.querySelectorAll("[data-blanked]")) {
    field.disabled = false;
    delete field.dataset.blanked;
  }
});
