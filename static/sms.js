// Every "获取验证码" (send code) button (the bind page, the account centre, the password
// reset): after a code was sent, it waits out the resend interval with a
// countdown. Without JavaScript the button still works; the server then
// answers a press that comes too soon with a notice.
(function () {
  var buttons = document.querySelectorAll("button[data-wait]");
  Array.prototype.forEach.call(buttons, function (button) {
    var left = parseInt(button.getAttribute("data-wait"), 10) || 0;
    var label = button.textContent;
    // The page's language: "{}秒后重新获取", "Resend in {}s".
    var waiting = button.getAttribute("data-wait-label") || "{}";
    function tick() {
      if (left <= 0) {
        button.disabled = false;
        button.textContent = label;
        return;
      }
      button.disabled = true;
      button.textContent = waiting.replace("{}", left);
      left -= 1;
      setTimeout(tick, 1000);
    }
    tick();
  });
})();
