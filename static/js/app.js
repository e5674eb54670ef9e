// Staff screens: small glue around htmx. No framework; the server renders everything.
// The operator panel's own behaviour is static/panel/panel.js.
(function () {
  "use strict";

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
