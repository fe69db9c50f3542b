// Site search that also works from file:// (the site opened from disk, offline): the index is
// a script, search/search_index.js, written at build time by docs/hooks/offline_site.py, and
// lunr builds it on the page. The theme's own search/main.js starts a web worker that fetches
// search_index.json, which browsers refuse for file:// pages. This file replaces it.
(function () {
  var index = null;
  var documents = {};
  var pending = null;

  function join(base, path) {
    return base.replace(/\/$/, "") + "/" + path;
  }

  function load(src, done) {
    var tag = document.createElement("script");
    tag.src = join(base_url, src);
    tag.onload = done;
    document.head.appendChild(tag);
  }

  function escapeHtml(value) {
    return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;")
      .replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function show(query) {
    var box = document.getElementById("mkdocs-search-results");
    if (!box) {
      return;
    }
    box.innerHTML = "";
    if (query.length < 3) {
      return;
    }
    if (!index) {
      pending = query;
      return;
    }
    var found = [];
    try {
      found = index.search(query);
    } catch (error) {  // a query lunr cannot parse (a lone "+", say): no results
      found = [];
    }
    if (!found.length) {
      var none = document.createElement("p");
      none.textContent = box.getAttribute("data-no-results-text") || "No results found";
      box.appendChild(none);
      return;
    }
    found.forEach(function (hit) {
      var doc = documents[hit.ref];
      box.insertAdjacentHTML("beforeend",
        '<article><h3><a href="' + escapeHtml(join(base_url, doc.location)) + '">' +
        escapeHtml(doc.title) + "</a></h3><p>" + escapeHtml(doc.text.substring(0, 200)) +
        "</p></article>");
    });
  }

  function build() {
    var data = window.crossentropySearchIndex;
    if (data.config && data.config.separator) {
      lunr.tokenizer.separator = new RegExp(data.config.separator);
    }
    index = lunr(function () {
      this.field("title");
      this.field("text");
      this.ref("location");
      data.docs.forEach(function (doc) {
        this.add(doc);
        documents[doc.location] = doc;
      }, this);
    });
    if (pending !== null) {
      show(pending);
    }
  }

  function start() {
    var input = document.getElementById("mkdocs-search-query");
    if (!input) {
      return;
    }
    input.addEventListener("keyup", function () { show(input.value); });
    var term = new URLSearchParams(window.location.search).get("q");
    if (term) {
      input.value = term;
      show(term);
    }
    load("search/lunr.js", function () { load("search/search_index.js", build); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
