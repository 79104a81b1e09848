// The demo page's host code: the contract's snippet, as an external file (the page's CSP forbids inline).
window.npsWidget = window.npsWidget || function () { (npsWidget.q = npsWidget.q || []).push(arguments); };
(function () {
  var me = document.getElementById("demo").dataset;
  npsWidget("identify", { id: me.user, properties: { plan: "pro", source: "demo" }, user_hash: me.hash });
  npsWidget("show", { force: true });
  document.getElementById("again").addEventListener("click", function () {
    npsWidget("show", { force: true });
  });
})();
