// Sort and filter the leaderboard's tables and charts in the browser: no server, no library.
// The view lives in the address: ?q=TEXT filters rows (and dims chart markers) by method label,
// ?sort=N sorts every sortable table by its N-th column (0-based), &desc=1 sorts descending.
(function () {
  "use strict";

  function keyOf(row, column) {
    var cell = row.cells[column];
    if (!cell) { return ""; }
    var key = cell.getAttribute("data-key");
    return key === null ? cell.textContent.trim() : key;
  }

  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var numeric = !isNaN(x) && !isNaN(y) && String(x) === String(a).trim() && String(y) === String(b).trim();
    if (numeric) { return x - y; }
    return String(a).localeCompare(String(b));
  }

  function sortTable(table, column, descending) {
    var body = table.tBodies[0];
    if (!body) { return; }
    var rows = Array.prototype.filter.call(body.rows, function (r) { return !r.classList.contains("dense"); });
    rows.sort(function (r1, r2) {
      var order = compare(keyOf(r1, column), keyOf(r2, column));
      return descending ? -order : order;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("aria-sort", i === column ? (descending ? "descending" : "ascending") : "none");
    });
    table.setAttribute("data-sorted", column + (descending ? " desc" : " asc"));
  }

  function applyFilter(text) {
    var needle = text.trim().toLowerCase();
    document.querySelectorAll("tr[data-label]").forEach(function (row) {
      var hit = !needle || row.getAttribute("data-label").toLowerCase().indexOf(needle) >= 0;
      row.hidden = !hit;
    });
    document.querySelectorAll("g.point.row[data-label], .key[data-label]").forEach(function (el) {
      var hit = !needle || el.getAttribute("data-label").toLowerCase().indexOf(needle) >= 0;
      el.classList.toggle("dimmed", !hit);
    });
    var shown = document.querySelectorAll("table.ranked tr.row:not([hidden])").length;
    document.body.setAttribute("data-rows-shown", String(shown));
  }

  function remember(name, value) {
    var params = new URLSearchParams(window.location.search);
    if (value === null || value === "") { params.delete(name); } else { params.set(name, value); }
    var query = params.toString();
    try {
      window.history.replaceState(null, "", query ? "?" + query : window.location.pathname);
    } catch (err) { /* file:// pages may refuse; the view still works */ }
  }

  function start() {
    var params = new URLSearchParams(window.location.search);
    var filter = document.getElementById("filter");
    var q = params.get("q") || "";
    if (filter) {
      filter.value = q;
      filter.addEventListener("input", function () { applyFilter(filter.value); remember("q", filter.value); });
    }
    applyFilter(q);
    document.querySelectorAll("table.sortable").forEach(function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
        th.tabIndex = 0;
        th.classList.add("sort-key");
        function sortHere() {
          var descending = th.getAttribute("aria-sort") === "ascending";
          sortTable(table, column, descending);
          remember("sort", String(column));
          remember("desc", descending ? "1" : null);
        }
        th.addEventListener("click", sortHere);
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortHere(); } });
      });
      if (params.has("sort")) {
        sortTable(table, parseInt(params.get("sort"), 10), params.get("desc") === "1");
      }
    });
    document.body.setAttribute("data-ready", "1");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
