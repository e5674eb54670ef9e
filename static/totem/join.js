// The PIX page on the phone (templates/totem/join_payment.html): every few seconds, asks the
// page again without showing it; once paid the server answers with a redirect, and the phone
// follows it to the ticket's page. No reload meanwhile: the customer may be copying the code.
(() => {
  const poll = document.getElementById("pix-poll");
  if (!poll) return;
  const every = Number(poll.dataset.seconds || 5) * 1000;
  const check = async () => {
    try {
      const answer = await fetch(location.href, { redirect: "manual", cache: "no-store" });
      if (answer.type === "opaqueredirect" || answer.status === 302) {
        location.assign(poll.dataset.next);
        return;
      }
    } catch (error) {
      // Offline for a moment: ask again at the next turn.
    }
    setTimeout(check, every);
  };
  setTimeout(check, every);
})();
