"""A small website for the explorer's tests: a harbour office with a search page that fills its
results by script (like a Sphinx manual's), a robots.txt that disallows /private/, a page that never
loads in time, and references to another site (a second server) that must never be requested."""

from __future__ import annotations

SEARCH_SCRIPT = """
const pages = [["Brenna Light — the lighthouse", "/brenna.html"], ["Quay Museum — local history", "/museum.html"],
               ["Ferry Timetable — crossings", "/ferry.html"]];
const q = (new URLSearchParams(location.search).get("q") || "").toLowerCase();
setTimeout(() => {
  const list = document.getElementById("results");
  for (const [title, href] of pages.filter(p => p[0].toLowerCase().includes(q))) {
    const item = document.createElement("li");
    item.innerHTML = `<a href="${href}">${title}</a>`;
    list.appendChild(item);
  }
  document.getElementById("status").textContent = "Search finished.";
}, 300);
"""


def page(title: str, body: str, other_site: str) -> str:
    return (f"<html><head><title>{title} — Skerry Island</title></head><body>"
            f"<nav><a href='/index.html'>Home</a> <a href='/search.html'>Search</a></nav>"
            f"<form role='search' action='/search.html' method='get'><input type='text' name='q' "
            f"aria-label='Quick search'></form>"
            f"<div role='main'><h1>{title}</h1>{body}</div>"
            f"<img src='{other_site}/pixel.png' alt=''></body></html>")


def harbour_site(other_site: str) -> dict[str, str]:
    """path -> content of the site; `other_site` is the base URL of a server it must not reach."""
    index = page("Harbour Office", (
        "<p>The Harbour Office of Skerry Island opened in 1872 and keeps the tide tables.</p>"
        "<ul><li><a href='/brenna.html'>Brenna Light — the lighthouse</a></li>"
        "<li><a href='/museum.html'>Quay Museum — local history</a></li>"
        "<li><a href='/private/records.html'>Private Records — staff only</a></li>"
        "<li><a href='/slow.html'>Slow Archive — old maps</a></li>"
        "<li><a href='/tides.html'>Tide Tables — today</a></li>"
        f"<li><a href='{other_site}/partner.html'>Partner Harbour — elsewhere</a></li></ul>"), other_site)
    return {
        "/robots.txt": "User-agent: *\nDisallow: /private/\n",
        "/": index,
        "/index.html": index,
        "/brenna.html": page("Brenna Light", (
            "<p>Brenna Light was first lit on 14 March 1871 by the keeper Jonas Vell.</p>"
            "<p>Its tower is 38 metres tall. <a href='/museum.html'>Quay Museum — local history</a> keeps its old "
            "lens.</p>"), other_site),
        "/museum.html": page("Quay Museum", (
            "<p>The Quay Museum opened in 1931 and has 14 rooms.</p>"
            "<p><a href='/ferry.html'>Ferry Timetable — crossings</a> lists the boats.</p>"), other_site),
        "/ferry.html": page("Ferry Timetable", "<p>The first ferry leaves at 07:40 and the crossing takes 55 "
                                               "minutes.</p>", other_site),
        "/tides.html": page("Tide Tables", "<p>High water at Skerry Island is at 11:20, 4.2 metres above chart "
                                           "datum.</p>", other_site),
        "/search.html": page("Search", "<p id='status'>Searching…</p><ul id='results'></ul>"
                                       f"<script>{SEARCH_SCRIPT}</script>", other_site),
        "/private/records.html": page("Private Records", "<p>Staff only.</p>", other_site),
        "/slow.html": page("Slow Archive", "<p>Never seen.</p>", other_site),
    }
