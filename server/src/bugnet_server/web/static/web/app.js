// Bugnet's web UI: small progressive enhancements. No inline script anywhere (the
// Content-Security-Policy forbids it); pages mark what they need with data- attributes.
"use strict";

document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const source = document.getElementById(copy.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(() => {
        const label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(() => { copy.textContent = label; }, 1500);
      });
    }
  }
  const confirmer = event.target.closest("[data-confirm]");
  if (confirmer && !window.confirm(confirmer.dataset.confirm)) {
    event.preventDefault();
  }
});

// "Select all" checkboxes: <input type=checkbox data-select-all="name-of-the-row-boxes">.
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (all) {
    for (const box of document.querySelectorAll(`input[name="${all.dataset.selectAll}"]`)) {
      box.checked = all.checked;
    }
  }
});
