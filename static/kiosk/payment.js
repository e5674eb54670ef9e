/* The kiosk's PIX and card screen listens on its ticket's socket (js/live.js, the client the
 * TV, the panel and the phone use): when the payment or the ticket moves, the status is
 * re-read at once ("payment-changed" on #payment, whose hx-get answers the new state or sends
 * the screen to the ticket). The element's own slow poll stays as the fallback while the
 * socket is down. */
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("payment-live").textContent);

  // Set once a re-read answers with the ticket's page (HX-Redirect): a second re-read then
  // would start a second navigation and reload the ticket screen the customer already sees.
  let leaving = false;
  document.body.addEventListener("htmx:beforeOnLoad", function (event) {
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

  window.Totem.live.connect(config.socket, {
    onEvent(event) {
      // The socket also hears the queues of the ticket's services: only its own news counts.
      if (event.ticket_id !== config.ticket) return;
      if (event.type === "payment_update" || event.type === "ticket_update") rereadSoon();
    },
    // Connected (or reconnected, or an event lost): whatever happened meanwhile.
    onResync: rereadSoon,
  });
})();
