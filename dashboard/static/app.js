// Small progressive enhancements; every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Ask before destructive actions: data-confirm on a form or on the button that submits it.
  document.querySelectorAll("form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      const source = event.submitter && event.submitter.dataset.confirm ? event.submitter : form;
      const message = source.dataset.confirm;
      if (message && !window.confirm(message)) event.preventDefault();
    });
  });

  // Copy buttons: data-copy names the element whose text goes to the clipboard (data-copied-label: the
  // button's text once done). Without the Clipboard API (plain HTTP off localhost) the text is selected.
  document.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const target = document.querySelector(button.dataset.copy);
      if (!target) return;
      const done = () => { button.textContent = button.dataset.copiedLabel || "Copied"; };
      const select = () => { window.getSelection().selectAllChildren(target); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(target.textContent.trim()).then(done, select);
      } else {
        select();
      }
    });
  });

  // The company switcher submits as soon as a company is chosen.
  document.querySelectorAll("select[data-autosubmit]").forEach((select) => {
    select.addEventListener("change", () => select.form.requestSubmit());
  });

  // Review shortcuts: Ctrl/Cmd+Enter confirms, Alt+N (also the access key) goes to the next document.
  const confirmButton = document.querySelector('[data-shortcut="confirm"]');
  const nextLink = document.querySelector('[data-shortcut="next"]');
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && confirmButton) {
      event.preventDefault();
      confirmButton.form.requestSubmit(confirmButton);
    } else if (event.altKey && !event.ctrlKey && event.key.toLowerCase() === "n" && nextLink) {
      event.preventDefault();
      nextLink.click();
    }
  });

  // Put the cursor on the first field with an error, else on the first unsure one.
  const first = document.querySelector(".field.invalid input, .field.invalid select")
    || document.querySelector(".field.unsure input, .field.unsure select");
  if (first) first.focus();
});
