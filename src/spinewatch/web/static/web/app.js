/* SpineWatch page behaviour: progressive enhancement only (every page works without it).
 *
 * Formsets: a button with data-add-row="<prefix>" adds a row by cloning <template
 * id="<prefix>-template"> (the formset's empty_form, "__prefix__" as the row number) and bumping
 * <prefix>-TOTAL_FORMS, instead of submitting the form (the no-JavaScript fallback re-renders the
 * page with one more row). The new row's first field gets the focus.
 */
/* Scripts run: <html class="js">, so hints meant for browsers without JavaScript (".no-js-only",
 * e.g. "reload to see the progress") disappear, and controls that need it ("[data-needs-js]",
 * e.g. the Copy button) appear. */
document.documentElement.classList.add("js");
document.querySelectorAll("[data-needs-js][hidden]").forEach(function (el) {
  el.hidden = false;
});

(function () {
  "use strict";

  function addRow(prefix) {
    var template = document.getElementById(prefix + "-template");
    var rows = document.getElementById(prefix + "-rows");
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var max = document.getElementById("id_" + prefix + "-MAX_NUM_FORMS");
    if (!template || !rows || !total) {
      return false;
    }
    var index = parseInt(total.value, 10) || 0;
    if (max && index >= (parseInt(max.value, 10) || 1000)) {
      return true; // at the limit: nothing to add, but do not submit either
    }
    var html = template.innerHTML.replace(/__prefix__/g, String(index));
    var holder = document.createElement("div");
    holder.innerHTML = html.trim();
    var row = holder.firstElementChild;
    rows.appendChild(row);
    total.value = String(index + 1);
    var first = row.querySelector("input, select, textarea");
    if (first) {
      first.focus();
    }
    return true;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-add-row]") : null;
    if (!button) {
      return;
    }
    if (addRow(button.getAttribute("data-add-row"))) {
      event.preventDefault();
    }
  });
})();

/* A scan picture that cannot be loaded (not rendered yet, or removed) becomes a short note
 * instead of a broken image. */
(function () {
  "use strict";
  document.addEventListener(
    "error",
    function (event) {
      var img = event.target;
      if (!img || img.tagName !== "IMG" || !img.classList.contains("picture")) {
        return;
      }
      var note = document.createElement("p");
      note.className = "empty";
      note.textContent = "The picture of this scan is not available.";
      var figure = img.closest("figure") || img;
      figure.replaceWith(note);
    },
    true
  );
})();

/* Copy buttons: <button data-copy="ID"> copies the value of the field #ID with the clipboard API;
 * where that is refused (an insecure origin, an old browser), the text is selected and
 * document.execCommand("copy") tried, else the reader is told to press Ctrl+C. The outcome goes
 * to the live region [data-copy-status="ID"]. */
(function () {
  "use strict";

  function say(id, text) {
    var status = document.querySelector('[data-copy-status="' + id + '"]');
    if (status) {
      status.textContent = text;
    }
  }

  function selectAll(field) {
    field.focus();
    field.select();
    if (field.setSelectionRange) {
      field.setSelectionRange(0, field.value.length);
    }
  }

  function fallback(id, field) {
    selectAll(field);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (e) {
      copied = false;
    }
    say(id, copied ? "Copied." : "Selected: press Ctrl+C (or \u2318+C) to copy.");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) {
      return;
    }
    var id = button.getAttribute("data-copy");
    var field = document.getElementById(id);
    if (!field) {
      return;
    }
    event.preventDefault();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () {
          selectAll(field);
          say(id, "Copied.");
        },
        function () {
          fallback(id, field);
        }
      );
    } else {
      fallback(id, field);
    }
  });

  /* A click into a read-only copy field selects all of it. */
  document.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field && field.classList && field.classList.contains("copy-text")) {
      field.select();
    }
  });
})();
