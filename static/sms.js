// Every "获取验证码" (send code) button (the bind page, the account centre, the password
// reset): after a code was sent, it waits out the resend interval with a
// countdown. Without JavaScript the button still works; the server then
// answers a press that comes too soon with a notice.
(function () {
  var buttons = document.querySelectorAll("button[data-wait]");
  Array.prototype.forEach.call(buttons, function (button) {
    var left = parseInt(button.getAttribute("data-wait"), 10) || 0;
    var label = button.textContent;
    // Texts in the page's language, "{}" for the seconds: "{}秒后重新获取".
    function text(name, seconds) {
      return (button.getAttribute(name) || "").replace("{}", seconds);
    }
    // A screen reader hears the wait when it begins and when it ends, not
    // every second of it: a polite live region beside the button, out of
    // sight. It is filled only after it is in the page, since a live region
    // that arrives with its text already in it is not read.
    var spoken = document.createElement("span");
    spoken.className = "visually-hidden";
    spoken.setAttribute("aria-live", "polite");
    button.parentNode.insertBefore(spoken, button.nextSibling);
    var waited = false;
    function tick() {
      if (left <= 0) {
        button.disabled = false;
        button.textContent = label;
        if (waited) {
          spoken.textContent = text("data-ready-spoken", 0);
        }
        return;
      }
      if (waited && spoken.textContent === "") {
        spoken.textContent = text("data-wait-spoken", left);
      }
      waited = true;
      button.disabled = true;
      button.textContent = text("data-wait-label", left);
      left -= 1;
      setTimeout(tick, 1000);
    }
    tick();
  });
})();
