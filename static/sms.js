// Every "获取验证码" button (the bind page, the account centre, the password
// reset): after a code was sent, it waits out the resend interval with a
// countdown. Without JavaScript the button still works; the server then
// answers a press that comes too soon with a notice.
(function () {
  var buttons = document.querySelectorAll("button[data-wait]");
  Array.prototype.forEach.call(buttons, function (button) {
    var left = parseInt(button.getAttribute("data-wait"), 10) || 0;
    var label = button.textContent;
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
          spoken.textContent = "现在可以重新获取验证码";
        }
        return;
      }
      if (waited && spoken.textContent === "") {
        spoken.textContent = left + "秒后可以重新获取验证码";
      }
      waited = true;
      button.disabled = true;
      button.textContent = left + "秒后重新获取";
      left -= 1;
      setTimeout(tick, 1000);
    }
    tick();
  });
})();
