/* A ticket's page on the customer's phone: re-reads itself when anything in its queues
 * moves, and when its own ticket is called sounds an alert, vibrates and says "Your turn!"
 * in the tab title. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("ticket-config").textContent);
  const status = document.getElementById("ticket-status");
  const soundButton = document.getElementById("sound-on");
  const title = document.title;
  const alerted = new Set();

  async function refresh() {
    try {
      const response = await fetch(location.pathname, {
        headers: { "HX-Request": "true" },
        cache: "no-store",
      });
      if (response.ok) status.innerHTML = await response.text();
    } catch (error) {
      /* offline: the socket's reconnect brings us back */
    }
  }
  const refreshSoon = window.Totem.live.debounce(refresh, 300);

  function yourTurn(event) {
    const key = event.line_id + ":" + event.call_count;
    if (alerted.has(key)) return; // the same call arrives through the ticket and its service
    alerted.add(key);
    window.Totem.sound.alert();
    if (navigator.vibrate) navigator.vibrate([300, 150, 300, 150, 600]);
    document.title = config.title + " · " + title;
    setTimeout(() => (document.title = title), 60000);
  }

  function offerSound() {
    soundButton.hidden = window.Totem.sound.ready();
  }
  soundButton.addEventListener("click", () => window.Totem.sound.unlock().then(offerSound));

  window.Totem.live.connect(config.socket, {
    onEvent(event) {
      const mine = event.ticket_id === config.ticket;
      if (event.type === "ticket_called" && mine) yourTurn(event);
      // Others' moves change this ticket's place only through its queues' queue_update
      // (sent on every call, completion, return, cancellation): the rest would re-read for
      // nothing, on every phone following the queue.
      if (mine || event.type === "queue_update") refreshSoon();
    },
    onResync: refresh,
  });
  setInterval(refresh, 60000);
  setTimeout(offerSound, 500);
})();
