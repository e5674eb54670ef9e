/* Countdowns to server times: the panel's session and cool-down timers, the phone's
 * "termina em 12 min", the TV's rooms.
 *
 * The server renders every countdown as
 *
 *   <span data-ends-at="2026-12-06T14:32:00+00:00" data-server-now="2026-12-06T14:29:10+00:00"
 *         data-format="clock|minutes" data-text="termina em {n} min" data-soon="…" data-over="…">
 *
 * with the text of the moment it rendered (right without JavaScript). The time left is
 * `ends-at − server-now − (seconds since this element was first seen)`: the device's own
 * clock only measures elapsed time, so a phone or a TV whose clock is minutes off still
 * counts down right, and a reload re-renders both server times and continues where it was.
 *
 * Formats: "clock" m:ss; "minutes" `data-text` with {n} rounded up, `data-soon` under a
 * minute. At zero the element gets the class `timer-over`, the text of `data-over`, and
 * dispatches (once per element) a bubbling `timer:over` event, for the screen to alert.
 */
(function () {
  "use strict";
  const Totem = (window.Totem = window.Totem || {});

  function left(element) {
    if (!element.dataset.seenAt) {
      element.dataset.seenAt = String(Date.now());
    }
    const end = Date.parse(element.dataset.endsAt);
    const serverNow = Date.parse(element.dataset.serverNow);
    const elapsed = Date.now() - Number(element.dataset.seenAt);
    return Math.max(0, Math.round((end - serverNow - elapsed) / 1000));
  }

  function text(element, seconds) {
    if (element.dataset.format === "minutes") {
      if (seconds < 60 && element.dataset.soon) return element.dataset.soon;
      return (element.dataset.text || "{n}").replace("{n}", String(Math.ceil(seconds / 60)));
    }
    const minutes = Math.floor(seconds / 60);
    return minutes + ":" + String(seconds % 60).padStart(2, "0");
  }

  function tick() {
    document.querySelectorAll("[data-ends-at][data-server-now]").forEach((element) => {
      const seconds = left(element);
      if (seconds > 0) {
        element.textContent = text(element, seconds);
        return;
      }
      if (element.dataset.over !== undefined) element.textContent = element.dataset.over;
      else element.textContent = text(element, 0);
      if (!element.classList.contains("timer-over")) {
        element.classList.add("timer-over");
        element.dispatchEvent(new CustomEvent("timer:over", { bubbles: true }));
      }
    });
  }

  Totem.timer = { tick, left };
  document.addEventListener("DOMContentLoaded", tick);
  setInterval(tick, 1000);
})();
