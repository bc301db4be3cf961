/* Tip-line web chat: plain JavaScript, no dependencies.
 *
 * Talks to the same-origin server:
 *   POST api/event   JSON: {text} | {button} | {location} | {resume: true}
 *   POST api/upload  multipart/form-data with one "file" field
 * Both answer {replies, notice, language, strings}. The server keeps the anonymous
 * session in an HttpOnly cookie; this script never reads or writes cookies.
 * All server text is rendered with textContent, never as HTML.
 */
(function () {
  "use strict";

  var EVENT_URL = "api/event";
  var UPLOAD_URL = "api/upload";
  var EVENT_TIMEOUT_MS = 60000;
  var UPLOAD_TIMEOUT_MS = 10 * 60000;

  var FALLBACK = {
    error: "Lỗi kết nối / Connection problem",
    tooBig: "Tệp quá lớn. / The file is too large.",
    geoError:
      "Không lấy được vị trí — hãy nhập địa chỉ. / Couldn't get your location — please type the address.",
    retry: "Thử lại / Retry",
  };

  var messages = document.getElementById("messages");
  var composer = document.getElementById("composer");
  var textArea = document.getElementById("text");
  var sendButton = document.getElementById("send");
  var attachButton = document.getElementById("attach");
  var fileInput = document.getElementById("file");
  var titleEl = document.getElementById("title");
  var noticeEl = document.getElementById("notice");
  var textLabel = document.getElementById("text-label");

  var strings = {};
  var busy = false;
  // Buttons of the latest bot answer: the only ones that may be pressed.
  var liveButtons = [];
  var typingEl = null;

  // ---------- rendering ----------

  // Whether the list is scrolled to its end; if so it stays there when it is resized
  // (the textarea grows, the on-screen keyboard opens).
  var stickToEnd = true;

  function scrollToEnd() {
    messages.scrollTop = messages.scrollHeight;
    stickToEnd = true;
  }

  /* Scroll to the newest message, but never past the top of `first`, so a long
   * answer is read from its beginning. */
  function revealFrom(first) {
    var end = messages.scrollHeight - messages.clientHeight;
    var top = first ? first.offsetTop - 8 : end;
    messages.scrollTop = Math.max(0, Math.min(end, top));
    stickToEnd = messages.scrollTop >= end - 2;
  }

  messages.addEventListener(
    "scroll",
    function () {
      stickToEnd = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 48;
    },
    { passive: true }
  );
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(function () {
      if (stickToEnd) messages.scrollTop = messages.scrollHeight;
    }).observe(messages);
  }

  var holdScroll = false;

  function append(node) {
    if (typingEl && typingEl.parentNode === messages) {
      messages.insertBefore(node, typingEl);
    } else {
      messages.appendChild(node);
    }
    if (!holdScroll) scrollToEnd();
    return node;
  }

  function bubble(kind, text) {
    var el = document.createElement("div");
    el.className = "msg " + kind;
    el.textContent = text == null ? "" : String(text);
    return el;
  }

  function addUser(text) {
    return append(bubble("user", text));
  }

  function addSystem(text, retry) {
    var el = bubble("system", text);
    if (retry) {
      var btn = document.createElement("button");
      btn.type = "button";
      btn.className = "retry";
      btn.textContent = FALLBACK.retry;
      btn.addEventListener("click", function () {
        if (busy) return;
        btn.disabled = true;
        retry();
      });
      el.appendChild(document.createTextNode(" "));
      el.appendChild(btn);
    }
    return append(el);
  }

  var SVG_NS = "http://www.w3.org/2000/svg";

  function clipIcon() {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "clip");
    var path = document.createElementNS(SVG_NS, "path");
    path.setAttribute(
      "d",
      "M16.5 6.5v10.1a4.5 4.5 0 0 1-9 0V5.8a3 3 0 0 1 6 0v9.9a1.5 1.5 0 0 1-3 0V6.5"
    );
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }

  function removeNode(node) {
    if (node && node.parentNode) node.parentNode.removeChild(node);
  }

  function setLiveButtonsEnabled(enabled) {
    liveButtons.forEach(function (btn) {
      btn.disabled = !enabled || btn.classList.contains("spent");
    });
  }

  function retireAllChoiceButtons(pressed) {
    // A press on an alert's own buttons retires only that alert's; any other press retires
    // the conversation's buttons and leaves the alerts' live.
    var turn = pressed && pressed.closest ? pressed.closest(".turn.proactive") : null;
    var all = turn
      ? turn.querySelectorAll(".choices button")
      : messages.querySelectorAll(".turn:not(.proactive) .choices button");
    for (var i = 0; i < all.length; i++) {
      all[i].disabled = true;
      if (turn) all[i].classList.add("spent");
    }
  }

  function makeChoiceButton(label, onPress) {
    var btn = document.createElement("button");
    btn.type = "button";
    btn.className = "choice";
    btn.textContent = label;
    btn.addEventListener("click", function () {
      if (busy || btn.disabled) return;
      onPress(btn);
    });
    return btn;
  }

  function renderReply(reply, newButtons) {
    var turn = document.createElement("div");
    turn.className = "turn";
    var text = bubble("bot", reply && reply.text);
    if (reply && typeof reply.photo === "string" && reply.photo.indexOf("/api/photo/") === 0) {
      // A bulletin's or alert's photo, above its text as on the phone apps.
      var img = document.createElement("img");
      img.className = "photo";
      img.src = reply.photo;
      img.alt = (strings && strings.photo) || "";
      img.loading = "lazy";
      text.insertBefore(img, text.firstChild);
    }
    var file = reply && reply.file;
    if (file && typeof file.data === "string" && typeof file.mime === "string") {
      // A chart or an export the server made for this reader: shown, or offered to save.
      var href = "data:" + file.mime + ";base64," + file.data;
      if (file.mime.indexOf("image/") === 0) {
        var chart = document.createElement("img");
        chart.className = "photo";
        chart.src = href;
        chart.alt = String(file.name || "");
        text.insertBefore(chart, text.firstChild);
      } else {
        var link = document.createElement("a");
        link.className = "file";
        link.href = href;
        link.download = String(file.name || "export");
        link.textContent = "⬇ " + String(file.name || "export");
        text.appendChild(document.createElement("br"));
        text.appendChild(link);
      }
    }
    turn.appendChild(text);

    var rows = (reply && Array.isArray(reply.buttons) && reply.buttons) || [];
    var choices = null;
    function ensureChoices() {
      if (!choices) {
        choices = document.createElement("div");
        choices.className = "choices";
        turn.appendChild(choices);
      }
      return choices;
    }
    rows.forEach(function (row) {
      if (!Array.isArray(row) || !row.length) return;
      var rowEl = document.createElement("div");
      rowEl.className = "row";
      row.forEach(function (button) {
        if (!button || typeof button.token !== "string") return;
        var label = String(button.label == null ? "" : button.label);
        var btn = makeChoiceButton(label, function (el) {
          pressButton(el, label, button.token);
        });
        rowEl.appendChild(btn);
        newButtons.push(btn);
      });
      if (rowEl.childNodes.length) ensureChoices().appendChild(rowEl);
    });

    if (reply && reply.request_location) {
      var locLabel = String(reply.request_location);
      var locRow = document.createElement("div");
      locRow.className = "row";
      var locBtn = makeChoiceButton(locLabel, function (el) {
        shareLocation(el, locLabel);
      });
      locBtn.classList.add("location");
      locRow.appendChild(locBtn);
      ensureChoices().appendChild(locRow);
      newButtons.push(locBtn);
    }
    return append(turn);
  }

  function applyStrings(data) {
    if (data && typeof data.language === "string" && data.language) {
      document.documentElement.lang = data.language;
    }
    var s = data && data.strings;
    if (!s || typeof s !== "object") return;
    strings = s;
    if (s.title) {
      document.title = s.title;
      titleEl.textContent = s.title;
    }
    if (s.notice) noticeEl.textContent = s.notice;
    if (s.placeholder) {
      textArea.placeholder = s.placeholder;
      textLabel.textContent = s.placeholder;
    }
    if (s.send) sendButton.textContent = s.send;
    if (s.attach) {
      attachButton.setAttribute("aria-label", s.attach);
      attachButton.title = s.attach;
    }
  }

  /* Render a server answer. Returns true when it carried new buttons. */
  function render(data) {
    applyStrings(data);
    var replies = (data && Array.isArray(data.replies) && data.replies) || [];
    var newButtons = [];
    var first = null;
    // Render first, then retire: the new buttons become the only live ones.
    // An alert's own buttons (a .proactive turn) stay live whatever the conversation does.
    var before = messages.querySelectorAll(".turn:not(.proactive) .choices button");
    holdScroll = true;
    try {
      var notice = data && data.notice;
      var repeated = replies.some(function (reply) {
        return reply && reply.text === notice;
      });
      // A notice that is also a reply (e.g. "slow down") is shown once, as the reply.
      if (notice && !repeated) first = addSystem(notice);
      replies.forEach(function (reply) {
        var turn = renderReply(reply, newButtons);
        if (!first) first = turn;
      });
    } finally {
      holdScroll = false;
    }
    if (first) revealFrom(first);
    if (newButtons.length) {
      for (var i = 0; i < before.length; i++) before[i].disabled = true;
      // Alerts' buttons that are still unpressed stay live beside the new step's.
      var alertsButtons = liveButtons.filter(function (btn) {
        return btn.closest && btn.closest(".turn.proactive") && !btn.classList.contains("spent");
      });
      alertsButtons.forEach(function (btn) {
        btn.disabled = false; // held while the request was in flight, like every live button
      });
      liveButtons = newButtons.concat(alertsButtons);
    }
    return newButtons.length > 0;
  }

  // ---------- busy state ----------

  function setBusy(value) {
    busy = value;
    textArea.disabled = value;
    sendButton.disabled = value;
    attachButton.disabled = value;
    fileInput.disabled = value;
    composer.setAttribute("aria-busy", value ? "true" : "false");
    if (value) {
      if (!typingEl) {
        typingEl = document.createElement("div");
        typingEl.className = "typing";
        typingEl.setAttribute("aria-hidden", "true");
        typingEl.appendChild(document.createElement("span"));
        typingEl.appendChild(document.createElement("span"));
        typingEl.appendChild(document.createElement("span"));
        messages.appendChild(typingEl);
        scrollToEnd();
      }
    } else {
      removeNode(typingEl);
      typingEl = null;
    }
  }

  // ---------- network ----------

  function errorText() {
    return (strings && strings.error) || FALLBACK.error;
  }

  /* POST and classify the answer:
   *   {kind: "ok", data}        200
   *   {kind: "refused", data}   413 / 429 with the usual JSON body
   *   {kind: "error", status}   anything else, or no answer at all */
  function post(url, body, isJson, timeoutMs) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller
      ? setTimeout(function () {
          controller.abort();
        }, timeoutMs)
      : null;
    var init = {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
      body: body,
    };
    if (isJson) init.headers["Content-Type"] = "application/json";
    if (controller) init.signal = controller.signal;

    return fetch(url, init)
      .then(function (response) {
        var status = response.status;
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (data) {
            var shaped = data && typeof data === "object" && Array.isArray(data.replies);
            if (status >= 200 && status < 300 && shaped) return { kind: "ok", data: data };
            if ((status === 413 || status === 429) && shaped) {
              return { kind: "refused", status: status, data: data };
            }
            return { kind: "error", status: status, data: shaped ? data : null };
          });
      })
      .catch(function () {
        return { kind: "error", status: 0, data: null };
      })
      .then(function (result) {
        if (timer) clearTimeout(timer);
        result.upload = !isJson;
        return result;
      });
  }

  function postEvent(payload) {
    return post(EVENT_URL, JSON.stringify(payload), true, EVENT_TIMEOUT_MS);
  }

  /* Run one request with the composer locked; then render or report the failure.
   * onDone(result) runs after rendering. */
  function run(request, onDone, retry) {
    setBusy(true);
    setLiveButtonsEnabled(false);
    return request()
      .then(function (result) {
        setBusy(false);
        var hadButtons = false;
        if (result.kind === "error") {
          if (result.data) applyStrings(result.data);
          if (result.status === 413 && result.upload) {
            addSystem(FALLBACK.tooBig);
          } else {
            addSystem(errorText(), retry);
          }
        } else {
          hadButtons = render(result.data);
        }
        // A refused or failed request changes nothing: the old buttons stay usable.
        if (!hadButtons) setLiveButtonsEnabled(true);
        if (onDone) onDone(result);
        return result;
      })
      .catch(function (err) {
        // A bug in rendering must not leave the page locked.
        setBusy(false);
        setLiveButtonsEnabled(true);
        addSystem(errorText());
        if (window.console) console.error(err);
        return { kind: "error", status: 0, data: null };
      });
  }

  // ---------- user actions ----------

  function sendText() {
    if (busy) return;
    var text = textArea.value;
    if (!text.trim()) {
      textArea.focus();
      return;
    }
    var hadFocus = document.activeElement === textArea;
    var mine = addUser(text);
    run(
      function () {
        return postEvent({ text: text });
      },
      function (result) {
        if (result.kind === "ok") {
          // Clear only what was sent (the field was locked, so it is the same text).
          if (textArea.value === text) textArea.value = "";
          autoGrow();
        } else {
          // Not handled: keep the typed text so nothing is lost.
          removeNode(mine);
        }
        if (hadFocus) textArea.focus();
      }
    );
  }

  function pressButton(btn, label, token) {
    if (busy) return;
    retireAllChoiceButtons(btn);
    btn.classList.add("chosen");
    var mine = addUser(label);
    run(
      function () {
        return postEvent({ button: token });
      },
      function (result) {
        if (result.kind !== "ok") {
          removeNode(mine);
          btn.classList.remove("chosen");
        }
      }
    );
  }

  function shareLocation(btn, label) {
    if (busy) return;
    var geo = navigator.geolocation;
    if (!geo) {
      addSystem(FALLBACK.geoError);
      return;
    }
    setBusy(true);
    setLiveButtonsEnabled(false);
    geo.getCurrentPosition(
      function (position) {
        setBusy(false);
        var coords = position.coords;
        var location = { latitude: coords.latitude, longitude: coords.longitude };
        retireAllChoiceButtons();
        btn.classList.add("chosen");
        var mine = addUser(label);
        run(
          function () {
            return postEvent({ location: location });
          },
          function (result) {
            if (result.kind !== "ok") {
              removeNode(mine);
              btn.classList.remove("chosen");
            }
          }
        );
      },
      function () {
        setBusy(false);
        setLiveButtonsEnabled(true);
        addSystem(FALLBACK.geoError);
      },
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 }
    );
  }

  function uploadFiles(files) {
    var list = Array.prototype.slice.call(files || []);
    var index = 0;
    function next() {
      if (index >= list.length) return Promise.resolve();
      var file = list[index++];
      var mine = addUser(file.name);
      mine.classList.add("file");
      mine.insertBefore(clipIcon(), mine.firstChild);
      return run(
        function () {
          var form = new FormData();
          form.append("file", file, file.name);
          return post(UPLOAD_URL, form, false, UPLOAD_TIMEOUT_MS);
        },
        function (result) {
          if (result.kind === "error") removeNode(mine);
          else if (result.kind === "refused") mine.classList.add("refused");
        }
      ).then(function (result) {
        // Stop after a failure or refusal so the user sees it; they can pick the rest again.
        if (result.kind !== "ok") return undefined;
        return next();
      });
    }
    return next();
  }

  function resume() {
    // On failure the error line carries a retry button.
    return run(
      function () {
        return postEvent({ resume: true });
      },
      null,
      resume
    );
  }

  // ---------- composer ----------

  function autoGrow() {
    textArea.style.height = "auto";
    var max = 160;
    textArea.style.height = Math.min(textArea.scrollHeight + 2, max) + "px";
    textArea.style.overflowY = textArea.scrollHeight > max ? "auto" : "hidden";
  }

  composer.addEventListener("submit", function (event) {
    event.preventDefault();
    sendText();
  });

  textArea.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a newline; never interrupt an IME composition (Vietnamese typing).
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    sendText();
  });

  textArea.addEventListener("input", autoGrow);

  attachButton.addEventListener("click", function () {
    if (busy) return;
    fileInput.click();
  });

  fileInput.addEventListener("change", function () {
    var files = fileInput.files;
    if (!files || !files.length) return;
    var copy = Array.prototype.slice.call(files);
    fileInput.value = "";
    uploadFiles(copy);
  });

  // ---------- proactive messages (alerts, bulletins, notices) ----------

  var INBOX_EVERY_MS = 15000;

  var shownProactive = {};

  function acknowledge(ids) {
    if (!ids.length) return;
    fetch("/api/inbox/ack", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ids: ids }),
    }).catch(function () {
      // Not acknowledged: the inbox offers them again, and they are shown once here anyway.
    });
  }

  function renderProactive(data) {
    var all = (data && Array.isArray(data.replies) && data.replies) || [];
    var ids = [];
    var replies = all.filter(function (reply) {
      if (!reply || typeof reply.id !== "number") return false;
      ids.push(reply.id);
      if (shownProactive[reply.id]) return false;
      shownProactive[reply.id] = true;
      return true;
    });
    acknowledge(ids);
    if (!replies.length) return;
    var newButtons = [];
    var first = null;
    replies.forEach(function (reply) {
      var turn = renderReply(reply, newButtons);
      turn.classList.add("proactive");
      if (!first) first = turn;
    });
    if (first) revealFrom(first);
    // Their buttons belong to their own message: the step's buttons stay live beside them.
    liveButtons = liveButtons.concat(newButtons);
  }

  function checkInbox() {
    if (busy || document.hidden) return;
    fetch("/api/inbox", { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (data) renderProactive(data);
      })
      .catch(function () {
        // Offline for a moment: the messages wait in the inbox for the next check.
      });
  }

  autoGrow();
  resume();
  setTimeout(checkInbox, 1500);
  setInterval(checkInbox, INBOX_EVERY_MS);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) checkInbox();
  });
})();
