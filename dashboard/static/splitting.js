// Review of a file that held several invoices: move a page, merge two groups, start a new group at a page.
// Without this file the form still works (one select per page); with it, groups are redrawn as they change.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-split-form]");
  if (!form) return;
  const container = form.querySelector("[data-split-groups]");
  const template = form.querySelector("template[data-group-template]");
  const newGroupText = (form.querySelector("select[data-page-group] option:last-child") || {}).textContent || "+";

  const pages = () => Array.from(container.querySelectorAll(".split-page"))
    .sort((a, b) => Number(a.dataset.page) - Number(b.dataset.page));
  const field = (li) => li.querySelector('[name^="page_"]');
  const labelOf = (li) => field(li).value;
  const isLocked = (li) => field(li).type === "hidden";
  const nextLabel = () => Math.max(0, ...pages().map((li) => Number(labelOf(li)))) + 1;

  const render = () => {
    const groups = new Map();
    for (const li of pages()) {
      const label = labelOf(li);
      if (!groups.has(label)) groups.set(label, []);
      groups.get(label).push(li);
    }
    const sets = new Map(Array.from(container.querySelectorAll(".split-group")).map((fs) => [fs.dataset.group, fs]));
    const ordered = Array.from(groups.entries());  // pages are sorted: groups come in the order of their first page
    const fresh = nextLabel();
    container.replaceChildren();
    ordered.forEach(([label, items], index) => {
      let fieldset = sets.get(label);
      if (!fieldset) {
        fieldset = template.content.firstElementChild.cloneNode(true);
        fieldset.dataset.group = label;
      }
      fieldset.querySelector("ol").replaceChildren(...items);
      fieldset.querySelector("[data-group-number]").textContent = String(index + 1);
      const merge = fieldset.querySelector("[data-merge]");
      const previous = index > 0 ? ordered[index - 1][1] : null;
      merge.hidden = previous === null || items.some(isLocked) || previous.some(isLocked);
      container.append(fieldset);
      items.forEach((li, position) => {
        const button = li.querySelector("[data-new-group]");
        if (button) button.hidden = position === 0;
      });
    });
    // Every select offers the groups as they now are, and a new one.
    for (const select of container.querySelectorAll("select[data-page-group]")) {
      const current = select.value;
      const options = ordered.map(([label, items], index) => {
        const option = new Option(String(index + 1), label, false, label === current);
        option.disabled = items.some(isLocked);
        return option;
      });
      options.push(new Option(newGroupText, String(fresh)));
      select.replaceChildren(...options);
      select.value = current;
    }
  };

  container.addEventListener("change", (event) => {
    if (event.target.matches("select[data-page-group]")) render();
  });
  container.addEventListener("click", (event) => {
    const newGroup = event.target.closest("[data-new-group]");
    if (newGroup) {
      const li = newGroup.closest(".split-page");
      const label = labelOf(li);
      const fresh = String(nextLabel());
      for (const other of pages()) {
        if (labelOf(other) === label && Number(other.dataset.page) >= Number(li.dataset.page)) field(other).value = fresh;
      }
      render();
      return;
    }
    const merge = event.target.closest("[data-merge]");
    if (merge) {
      const fieldset = merge.closest(".split-group");
      const previous = fieldset.previousElementSibling;
      if (!previous) return;
      const into = previous.dataset.group;
      for (const li of fieldset.querySelectorAll(".split-page")) field(li).value = into;
      render();
    }
  });
  render();
});
