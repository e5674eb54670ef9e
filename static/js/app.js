// Staff screens: small glue around htmx. No framework; the server renders everything.
(function () {
  "use strict";

  // The panel refreshes itself, but not while a row's extra actions are open (a reason being
  // typed, a service being chosen): a refresh would close them and lose what was typed.
  window.panelIdle = function () {
    var live = document.getElementById("panel-live");
    if (!live) return false;
    if (live.querySelector("details[open], .more-slot:not(:empty)")) return false;
    var active = document.activeElement;
    return !(active && live.contains(active) && active.matches("input, select, textarea"));
  };

  // The refresh asks first, here rather than in an hx-trigger filter: filters are evaluated
  // as code, which the Content-Security-Policy forbids.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt.id === "panel-live" && !window.panelIdle()) event.preventDefault();
  });

  function banner(text) {
    var box = document.getElementById("connection");
    if (!box) return;
    box.textContent = text || "";
    box.hidden = !text;
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    // The session ended: htmx followed the redirect to the login page; go there for real.
    var url = event.detail.xhr.responseURL || "";
    if (url.indexOf("/accounts/login/") !== -1) {
      event.detail.shouldSwap = false;
      window.location.assign(url);
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) banner("");
  });
  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var box = document.getElementById("connection");
    var text = box && box.dataset["error" + status];
    banner(text || (box && box.dataset.error) || "Erro " + status);
  });
  document.addEventListener("htmx:sendError", function () {
    var box = document.getElementById("connection");
    banner(box && box.dataset.offline);
  });
})();

// "Close" in a row's extra actions empties the slot; the panel's refresh then resumes.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-close-more]");
  if (!button) return;
  var slot = button.closest(".more-slot");
  if (slot) slot.innerHTML = "";
});

// The operator panel listens to its station's queues over the WebSocket (totem/live.js);
// each event triggers queue-changed on body and the panel re-reads itself. Polling stays as
// the fallback when the socket is down.
document.addEventListener("DOMContentLoaded", function () {
  var config = document.getElementById("panel-config");
  if (!config || !window.Totem || !window.Totem.live) return;
  window.Totem.live.panel({ slug: config.dataset.slug, equipment: config.dataset.equipment });
});

// Browsers keep audio muted until a gesture: the operator's first tap allows the panel's blip.
document.addEventListener(
  "click",
  function () {
    if (window.Totem && window.Totem.sound) window.Totem.sound.unlock();
  },
  { once: true }
);
