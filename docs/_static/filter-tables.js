// Tables marked "autograd-spec-filterable": a filter box above each, and click-to-sort headers.
// Local code only: the docs make no request to another host.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table.autograd-spec-filterable").forEach(function (table) {
    var body = table.tBodies[0];
    var box = document.createElement("input");
    box.type = "search";
    box.placeholder = "Filter rows…";
    box.className = "autograd-spec-filter";
    box.setAttribute("aria-label", "Filter the rows of the table below");
    table.parentNode.insertBefore(box, table);
    box.addEventListener("input", function () {
      var needle = box.value.toLowerCase();
      Array.prototype.forEach.call(body.rows, function (row) {
        row.style.display = row.textContent.toLowerCase().indexOf(needle) === -1 ? "none" : "";
      });
    });
    var headers = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(headers, function (cell, column) {
      cell.style.cursor = "pointer";
      cell.title = "Sort by this column";
      cell.addEventListener("click", function () {
        var ascending = cell.getAttribute("data-sorted") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("data-sorted"); });
        cell.setAttribute("data-sorted", ascending ? "ascending" : "descending");
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
          var order = x.localeCompare(y, undefined, {numeric: true});
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
});
