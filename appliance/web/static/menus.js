// The menu and announcement forms (menu_form.html, announcement_form.html): each prompt field's
// Preview button plays the prompt named in the field in its <audio> element: sound:NAME from the
// page's pack route, any other name from the Prompts page's route. The forms work without it.
"use strict";

(function () {
  for (const picker of document.querySelectorAll(".prompt-picker")) {
    const button = picker.querySelector("button.preview");
    const input = document.getElementById(button.dataset.for);
    const player = picker.querySelector("audio.preview-audio");
    const error = picker.querySelector(".preview-error");
    player.addEventListener("error", function () {
      error.textContent = error.dataset.missing || "?";
      error.hidden = false;
    });
    button.addEventListener("click", function () {
      const name = input.value.trim();
      error.hidden = true;
      if (!name) {
        return;
      }
      const pack = name.startsWith("sound:");
      const template = pack ? picker.dataset.soundUrl : picker.dataset.promptUrl;
      const target = pack ? name.slice(6) : name;
      player.src = template.replace("NAME", target.split("/").map(encodeURIComponent).join("/"));
      player.hidden = false;
      player.play().catch(function () {}); // the player's own button plays it when refused
    });
  }
})();
