/*! loudou.js — a small tracker for loudou's Segment-compatible API (no dependencies, no CDN).
 *
 * <script src="https://YOUR-LOUDOU/static/loudou.js" data-write-key="ldw_..."></script>
 * <script>loudou.track("Signed Up", {plan: "pro"}); loudou.identify("user-42", {email: "a@b.c"});</script>
 *
 * - A page view is sent on load (data-auto-page="false" turns it off); loudou.page() sends more.
 * - The anonymous id lives in a first-party cookie (ldu_aid, one year) and in localStorage.
 * - Messages are batched (flush after 20 messages or 2 s) and sent to /v1/batch with a messageId
 *   each, so a retried batch is stored once. When the page is hidden, the queue goes out with
 *   navigator.sendBeacon.
 * - The write key travels in the body (sendBeacon cannot set headers); it can only write.
 */
(function (w, d) {
  "use strict";
  if (w.loudou && w.loudou.__loaded) return;
  var script = d.currentScript;
  var attr = function (name) { return script ? script.getAttribute("data-" + name) : null; };
  var cfg = w.loudouConfig || {};
  var writeKey = cfg.writeKey || attr("write-key");
  var host = cfg.host || attr("host") || (script && script.src ? new URL(script.src).origin : location.origin);
  var flushAt = cfg.flushAt || 20;
  var flushInterval = cfg.flushInterval || 2000;
  var BEACON_BYTES = 60000; // sendBeacon refuses bodies over 64 KB
  var AID = "ldu_aid", UID = "ldu_uid";
  var queue = [], timer = null, sending = false;

  function uuid() {
    if (w.crypto && w.crypto.randomUUID) return w.crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
    });
  }
  function store(key, value) {
    try { if (value === null) w.localStorage.removeItem(key); else w.localStorage.setItem(key, value); } catch (e) { /* private mode */ }
  }
  function stored(key) {
    try { return w.localStorage.getItem(key); } catch (e) { return null; }
  }
  function cookie(name, value) {
    if (value === undefined) {
      var m = d.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
      return m ? decodeURIComponent(m[1]) : null;
    }
    d.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=31536000; SameSite=Lax";
    return value;
  }
  function anonymousId() {
    var id = cookie(AID) || stored(AID) || uuid();
    cookie(AID, id);
    store(AID, id);
    return id;
  }
  function campaign() {
    var out = {}, names = {utm_source: "source", utm_medium: "medium", utm_campaign: "name", utm_term: "term", utm_content: "content"};
    var params = new URLSearchParams(location.search);
    Object.keys(names).forEach(function (k) { if (params.get(k)) out[names[k]] = params.get(k); });
    return out;
  }
  function context() {
    var ctx = {
      library: {name: "loudou.js", version: "1"},
      page: {path: location.pathname, url: location.href, referrer: d.referrer, title: d.title, search: location.search},
      userAgent: navigator.userAgent,
      locale: navigator.language
    };
    var utm = campaign();
    if (Object.keys(utm).length) ctx.campaign = utm;
    return ctx;
  }
  function enqueue(type, fields) {
    var msg = {type: type, messageId: uuid(), timestamp: new Date().toISOString(), anonymousId: anonymousId(), context: context()};
    var uid = stored(UID);
    if (uid) msg.userId = uid;
    for (var k in fields) if (fields[k] !== undefined) msg[k] = fields[k];
    queue.push(msg);
    if (queue.length >= flushAt) flush();
    else if (!timer) timer = setTimeout(flush, flushInterval);
  }
  function take(maxBytes) {
    var batch = [], size = 100;
    while (queue.length && batch.length < 100) {
      var n = JSON.stringify(queue[0]).length + 1;
      if (batch.length && size + n > maxBytes) break;
      batch.push(queue.shift());
      size += n;
    }
    return batch;
  }
  function body(batch) {
    return JSON.stringify({batch: batch, writeKey: writeKey, sentAt: new Date().toISOString()});
  }
  function flush() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (sending || !queue.length) return;
    var batch = take(400000);
    sending = true;
    // text/plain keeps this a simple CORS request (no preflight); the server reads JSON anyway.
    fetch(host + "/v1/batch", {method: "POST", body: body(batch), keepalive: true, headers: {"Content-Type": "text/plain"}})
      .then(function (r) { if (r.status >= 500 || r.status === 429) throw new Error("retry"); })
      .catch(function () { queue = batch.concat(queue); }) // messageIds make the retry safe
      .then(function () { sending = false; if (queue.length) timer = setTimeout(flush, flushInterval); });
  }
  function beacon() {
    if (timer) { clearTimeout(timer); timer = null; }
    while (queue.length) {
      var batch = take(BEACON_BYTES);
      var blob = new Blob([body(batch)], {type: "text/plain"});
      if (!(navigator.sendBeacon && navigator.sendBeacon(host + "/v1/batch", blob))) {
        queue = batch.concat(queue);
        flush();
        return;
      }
    }
  }

  var api = {
    __loaded: true,
    track: function (event, properties) { enqueue("track", {event: event, properties: properties || {}}); },
    page: function (name, properties) { enqueue("page", {name: name, properties: properties || {}}); },
    identify: function (userId, traits) {
      if (userId) store(UID, String(userId));
      enqueue("identify", {userId: userId ? String(userId) : undefined, traits: traits || {}});
    },
    alias: function (userId, previousId) { enqueue("alias", {userId: String(userId), previousId: previousId || anonymousId()}); },
    reset: function () { store(UID, null); store(AID, null); cookie(AID, uuid()); },
    anonymousId: anonymousId,
    flush: flush,
    queue: function () { return queue.slice(); }
  };
  var pending = Array.isArray(w.loudou) ? w.loudou : []; // calls made before the script loaded
  w.loudou = api;
  pending.forEach(function (call) { api[call[0]].apply(api, call.slice(1)); });
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });
  w.addEventListener("pagehide", beacon);
  if ((cfg.autoPage !== undefined ? cfg.autoPage : attr("auto-page")) !== false && attr("auto-page") !== "false") api.page();
})(window, document);
