/* The poster's Print button: a script of its own, since the CSP refuses inline handlers. */
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
