// The prompt form (prompt_form.html): the Preview button posts the form in the background to
// its data-preview URL, which makes the audio into a temporary file, and plays that file in the
// form's <audio> element; the text or file field shown follows "Made from". The form works
// without it (Save makes the prompt; it just cannot be heard first).
"use strict";

(function () {
  const form = document.getElementById("prompt-form");
  if (!form) {
    return;
  }
  const kind = form.querySelector("select[name=kind]");
  const button = document.getElementById("preview");
  const player = document.getElementById("preview-audio");
  const error = document.getElementById("preview-error");

  function follow() {
    for (const part of form.querySelectorAll("[data-kind]")) {
      part.hidden = part.dataset.kind !== kind.value;
    }
  }
  kind.addEventListener("change", follow);
  follow();

  button.addEventListener("click", async function () {
    button.disabled = true;
    error.hidden = true;
    try {
      const answer = await fetch(form.dataset.preview, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
      });
      const body = await answer.json();
      if (!answer.ok) {
        error.textContent = body.error || String(answer.status);
        error.hidden = false;
        return;
      }
      player.src = body.url;
      player.hidden = false;
      player.play().catch(function () {}); // the player's own button plays it when refused
    } catch (err) {
      error.textContent = String(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
