// A QQ avatar that does not load (QQ's host unreachable, an avatar removed)
// gives way to the "QQ" badge instead of a broken picture.
(function () {
  var images = document.querySelectorAll("img.avatar");
  Array.prototype.forEach.call(images, function (img) {
    function badge() {
      var span = document.createElement("span");
      span.className = "avatar";
      span.setAttribute("aria-hidden", "true");
      span.textContent = "QQ";
      img.replaceWith(span);
    }
    if (img.complete && img.naturalWidth === 0) {
      badge();
    } else {
      img.addEventListener("error", badge);
    }
  });
})();
