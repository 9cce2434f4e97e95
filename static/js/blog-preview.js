// The admin's live preview of a blog post. Beside the markdown editor it keeps a frame
// showing the post page exactly as readers will get it: the text (title, summary, body and
// tags) is posted to the admin's preview view, which renders it with the site's own template
// and sanitizer, and the answer becomes the frame's document. Nothing is saved.
// Status and publication date go along, so the preview's notice says draft/scheduled/public.
// Loaded by PostAdmin.media as a classic deferred script (the admin has no module loader).

(function () {
  "use strict";

  const script = document.currentScript;
  const previewUrl = script && script.dataset.previewUrl;
  const DELAY_MS = 400;

  function init() {
    const body = document.getElementById("id_body");
    if (!previewUrl || !body) return; // not the post form (e.g. the change list)
    const form = body.form;
    const row = body.closest(".form-row") || body.parentElement;

    const panel = document.createElement("div");
    panel.className = "blog-preview";
    panel.setAttribute("data-blog-preview", "");
    const status = document.createElement("p");
    status.className = "blog-preview__status";
    status.setAttribute("aria-live", "polite");
    status.textContent = "Live preview";
    const frame = document.createElement("iframe");
    frame.className = "blog-preview__frame";
    frame.title = "Live preview of the post";
    panel.append(status, frame);
    row.classList.add("blog-editor");
    row.append(panel);

    let timer = null;
    let controller = null;
    let scrollY = 0;

    frame.addEventListener("load", () => {
      if (frame.contentWindow) frame.contentWindow.scrollTo(0, scrollY);
    });

    async function refresh() {
      const data = new FormData();
      for (const name of [
        "csrfmiddlewaretoken", "title", "summary", "body", "status", "publish_at_0", "publish_at_1",
      ]) {
        const field = form.elements.namedItem(name);
        if (field && "value" in field) data.append(name, field.value);
      }
      const tags = form.elements.namedItem("tags");
      if (tags && tags.options) {
        for (const option of tags.options) {
          // filter_horizontal keeps the chosen tags selected in the hidden "to" box.
          if (option.selected) data.append("tags", option.value);
        }
      }
      if (controller) controller.abort();
      controller = new AbortController();
      status.textContent = "Updating preview…";
      try {
        const response = await fetch(previewUrl, {
          method: "POST",
          body: data,
          credentials: "same-origin",
          signal: controller.signal,
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const html = await response.text();
        if (frame.contentWindow) scrollY = frame.contentWindow.scrollY;
        frame.srcdoc = html;
        status.textContent = "Live preview";
        panel.dataset.state = "ready";
      } catch (error) {
        if (error.name === "AbortError") return;
        status.textContent = `Preview failed: ${error.message}`;
        panel.dataset.state = "failed";
      }
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(refresh, DELAY_MS);
    }

    form.addEventListener("input", (event) => {
      if (["id_title", "id_summary", "id_body"].includes(event.target.id)) schedule();
    });
    form.addEventListener("change", schedule);
    refresh();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
