// Imports page: drag-and-drop upload (the plain file input stays the fallback) and live progress.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-dropzone]");
  if (form) {
    const input = form.querySelector('input[type="file"]');
    const zone = form.querySelector(".dropzone");
    const maxBytes = Number(form.dataset.maxBytes || 0);
    const maxFiles = Number(form.dataset.maxFiles || 0);
    const tooBig = (files) => {
      let total = 0;
      for (const file of files) total += file.size;
      // The messages come translated from the page (data-too-many, data-too-large), English otherwise.
      const say = (key, fallback, values) => Object.entries(values).reduce(
        (text, [name, value]) => text.replace(`{${name}}`, String(value)), form.dataset[key] || fallback);
      if (maxFiles && files.length > maxFiles) return say("tooMany", "At most {count} files at once.", { count: maxFiles });
      if (maxBytes && total > maxBytes) {
        return say("tooLarge", "These files are too large together (limit {size} MB).", { size: Math.round(maxBytes / 1048576) });
      }
      return null;
    };
    ["dragenter", "dragover"].forEach((name) => zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    }));
    ["dragleave", "drop"].forEach((name) => zone.addEventListener(name, () => zone.classList.remove("dragging")));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      const problem = tooBig(event.dataTransfer.files);
      if (problem) { window.alert(problem); return; }
      input.files = event.dataTransfer.files;
      form.requestSubmit();
    });
    form.addEventListener("submit", (event) => {
      const problem = tooBig(input.files);
      if (problem) { event.preventDefault(); window.alert(problem); }
    });
  }

  // Live progress: poll the status of the rows still in progress; reload once they have all finished,
  // so that reasons and re-process buttons appear as the server renders them.
  const table = document.querySelector("table[data-status-url]");
  if (!table) return;
  const pending = () => Array.from(table.querySelectorAll("tr[data-in-progress]")).map((row) => row.dataset.messageId);
  if (!pending().length) return;
  const labels = table.dataset.labels ? JSON.parse(table.dataset.labels) : { received: "Received",
    extracting: "Being read", processed: "Processed", pending: "To verify", failed: "Could not be read",
    ignored: "Ignored", duplicate: "Duplicate", quarantined: "Quarantined" };  // the page's, in its language
  const setBadge = (holder, status) => {
    const badge = holder && holder.querySelector(".badge");
    if (!badge) return;
    badge.className = `badge status-${status}`;
    badge.textContent = labels[status] || status;
  };
  const poll = async () => {
    const ids = pending();
    if (!ids.length) return;
    let data;
    try {
      const response = await fetch(`${table.dataset.statusUrl}?ids=${ids.join(",")}`, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      data = await response.json();
    } catch (error) {
      window.setTimeout(poll, 10000);  // the server is restarting or unreachable: try again later
      return;
    }
    let changed = false;
    for (const message of data.messages) {
      const row = table.querySelector(`tr[data-message-id="${message.id}"]`);
      if (!row) continue;
      setBadge(row.querySelector('[data-role="stage"]'), message.stage);
      const shown = row.querySelectorAll("li[data-document-id]").length;
      if (shown !== message.documents.length) changed = true;
      for (const doc of message.documents) {
        setBadge(row.querySelector(`li[data-document-id="${doc.id}"] [data-role="status"]`), doc.status);
      }
      if (!message.in_progress) { row.removeAttribute("data-in-progress"); changed = true; }
    }
    if (changed) { window.location.reload(); return; }
    window.setTimeout(poll, 3000);
  };
  window.setTimeout(poll, 3000);
});
