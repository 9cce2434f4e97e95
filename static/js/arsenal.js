// Progressive enhancement of the technical arsenal's category selector: a click filters the
// groups in place instead of loading the page. Without JavaScript the links still work —
// the server renders the chosen category (templates/portfolio/_arsenal.html).

function select(root, slug) {
  const groups = root.querySelectorAll("[data-arsenal-group]");
  const known = slug === "" || [...groups].some((g) => g.dataset.category === slug);
  if (!known) slug = "";

  for (const group of groups) {
    group.hidden = slug !== "" && group.dataset.category !== slug;
  }
  for (const link of root.querySelectorAll("[data-arsenal-selector] a[data-category]")) {
    if (link.dataset.category === slug) link.setAttribute("aria-current", "true");
    else link.removeAttribute("aria-current");
  }
  return slug;
}

function enhance(root) {
  const selector = root.querySelector("[data-arsenal-selector]");
  if (!selector) return;
  const syncUrl = root.hasAttribute("data-arsenal-sync-url");

  selector.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-category]");
    if (!link || !selector.contains(link)) return;
    // Let modified clicks open a new tab/window as usual.
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();

    const slug = select(root, link.dataset.category);
    // The "no such category" notice no longer applies once a choice is made.
    for (const notice of document.querySelectorAll("[data-arsenal-notice]")) notice.hidden = true;

    if (syncUrl) {
      const url = new URL(window.location.href);
      if (slug) url.searchParams.set("category", slug);
      else url.searchParams.delete("category");
      history.replaceState(history.state, "", url);
    }
  });
}

for (const root of document.querySelectorAll("[data-arsenal]")) enhance(root);
