(function (s) {
  try {
    var n = navigator, w = window, u = n.userAgent || "", d = n.userAgentData, b = 0;
    if (n.webdriver) b |= 1;
    var brands = d && d.brands ? d.brands.map(function (x) { return x.brand; }).join(",") : "";
    if (/Headless/.test(u + " " + (n.appVersion || "") + " " + brands)) b |= 2;
    var chrome = /(Chrome|Chromium|Edg)\//.test(u) && !/CriOS|EdgiOS/.test(u);
    var firefox = /Firefox\//.test(u) && !/FxiOS/.test(u);
    var safari = /Version\/[\d.]+.*Safari\//.test(u) && !chrome;
    var mozCss = w.CSS && CSS.supports && CSS.supports("-moz-appearance", "none");
    if ((chrome && !w.chrome) || (firefox && !mozCss) || ((safari || firefox) && w.chrome)) b |= 4;
    if (n.languages && n.languages.length === 0) b |= 16;
    var url = "/.well-known/botgate/beacon?t=" + encodeURIComponent(s.getAttribute("data-t")) + "&a=" + b;
    if (n.sendBeacon) n.sendBeacon(url);
    else if (w.fetch) fetch(url, { method: "POST", keepalive: true, credentials: "same-origin" });
  } catch (e) {}
})(document.currentScript);
