// tokend console: the little script the pages use. Every page works
// without it; with it, destructive forms ask in a dialog instead of on a
// confirmation page, and secrets get a working Copy button.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // A form with data-confirm asks before it is sent. Confirmed, it carries
  // confirmed=yes, so the server skips its own confirmation page.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.querySelector("input[name=confirmed]")) {
        return;
      }
      event.preventDefault();
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        return;
      }
      var ok = document.createElement("input");
      ok.type = "hidden";
      ok.name = "confirmed";
      ok.value = "yes";
      form.appendChild(ok);
      form.submit();
    });
  });

  // A button with data-copy copies the value of the field it names.
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      var status = document.querySelector(".copied");
      var said = function (text) {
        if (status) {
          status.textContent = text;
        }
      };
      var fallback = function () {
        field.focus();
        field.select();
        var ok = false;
        try {
          ok = document.execCommand("copy");
        } catch (e) {
          ok = false;
        }
        said(ok ? "Copied." : "Select the secret and copy it (Ctrl+C).");
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(function () {
          said("Copied.");
        }, fallback);
      } else {
        fallback();
      }
    });
  });
});
