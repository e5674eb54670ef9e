/* The kiosk's PIX and card screen listens on its ticket's socket (js/live.js, the client the
 * TV, the panel and the phone use): when the payment or the ticket moves, the status is
 * re-read at once ("payment-changed" on #payment, whose hx-get answers the new state or sends
 * the screen to the ticket). The element's own slow poll stays as the fallback while the
 * socket is down.
 *
 * Loaded on every kiosk screen, since any screen may become the payment screen in place
 * (kiosk.js fires "kiosk:screen" on each): the socket opens where #payment-live is, and closes
 * when the screen changes. */
(function () {
  "use strict";
  let connection = null;
  // Set once a re-read answers with the ticket's page (HX-Redirect): a second re-read then
  // would start a second navigation and reload the ticket screen the customer already sees.
  let leaving = false;
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    if (event.detail.xhr && event.detail.xhr.getResponseHeader("HX-Redirect")) leaving = true;
  });

  function reread() {
    if (leaving) return;
    const payment = document.getElementById("payment");
    if (payment && window.htmx) window.htmx.trigger(payment, "payment-changed");
  }
  // The payment's events come together (payment_update, ticket_update, queue_update): one
  // re-read for them all.
  const rereadSoon = window.Totem.live.debounce(reread, 100);

  document.addEventListener("kiosk:screen", function () {
    if (connection) connection.close();
    connection = null;
    leaving = false;
    const data = document.getElementById("payment-live");
    if (!data) return;
    const config = JSON.parse(data.textContent);
    connection = window.Totem.live.connect(config.socket, {
      onEvent(event) {
        // The socket also hears the queues of the ticket's services: only its own news counts.
        if (event.ticket_id !== config.ticket) return;
        if (event.type === "payment_update" || event.type === "ticket_update") rereadSoon();
      },
      // Connected (or reconnected, or an event lost): whatever happened meanwhile.
      onResync: rereadSoon,
    });
  });
})();
