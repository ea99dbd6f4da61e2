// Portcullis enhancements. Every page works without this file: forms post and pages
// reload; with it, some forms update their part of the page in place.
"use strict";

// Replaces each element named in `selectors` ("#a,#b") by its namesake in `html`.
function swap(html, selectors) {
  const fresh = new DOMParser().parseFromString(html, "text/html");
  for (const selector of selectors.split(",")) {
    const now = document.querySelector(selector);
    const next = fresh.querySelector(selector);
    if (now && next) now.replaceWith(next);
  }
  revealCopyButtons();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button || !navigator.clipboard) return;
  event.preventDefault();
  navigator.clipboard.writeText(button.dataset.copy).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  // Star toggles, comments, inline edits: post in the background and swap the part
  // of the page that changed. Any failure falls back to a normal page load.
  if (!form.dataset.swap || !window.fetch) return;
  event.preventDefault();
  fetch(form.action, {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    credentials: "same-origin",
  }).then((response) => {
    if (!response.ok) throw new Error(String(response.status));
    return response.text();
  }).then((html) => swap(html, form.dataset.swap))
    .catch(() => form.submit());
});

// Search as you type: the results part of the page follows the field.
for (const input of document.querySelectorAll("input[data-live]")) {
  let timer;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const url = new URL(input.form.action, window.location.href);
      for (const [key, value] of new FormData(input.form)) url.searchParams.set(key, value);
      fetch(url, { credentials: "same-origin" })
        .then((response) => response.ok ? response.text() : Promise.reject(response.status))
        .then((html) => {
          swap(html, input.dataset.live);
          history.replaceState(null, "", url);
        })
        .catch(() => {});
    }, 250);
  });
}

// Copy buttons are useless without a script, so they are hidden until it runs.
function revealCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy][hidden]")) button.hidden = false;
}
revealCopyButtons();
