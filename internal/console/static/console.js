// outboxd console: refreshes the overview without reloading and draws its
// charts as SVG. No dependencies; everything the server sends is placed as
// text (textContent), never as markup.
"use strict";

(function () {
  const root = document.getElementById("overview");
  if (!root) {
    return;
  }
  const api = root.dataset.api;
  const every = Math.max(500, parseInt(root.dataset.refreshMs, 10) || 2000);
  const svgNS = "http://www.w3.org/2000/svg";
  // Lines differ by dash pattern as well as colour, so the charts read
  // without colour too.
  const dashes = ["", "6 4", "2 3", "10 3 2 3"];

  function setText(el, text) {
    if (el && el.textContent !== text) {
      el.textContent = text;
    }
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) {
      td.className = cls;
    }
    row.appendChild(td);
    return td;
  }

  function fillBody(table, rows, empty, fill) {
    const body = document.querySelector(table + " tbody");
    const fresh = document.createElement("tbody");
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      cell(tr, empty).colSpan = document.querySelector(table + " thead tr").cells.length;
      fresh.appendChild(tr);
    }
    rows.forEach(function (r) {
      const tr = document.createElement("tr");
      fill(tr, r);
      fresh.appendChild(tr);
    });
    body.replaceWith(fresh);
  }

  function svg(name, attrs) {
    const el = document.createElementNS(svgNS, name);
    Object.keys(attrs).forEach(function (k) {
      el.setAttribute(k, attrs[k]);
    });
    return el;
  }

  function fmt(v) {
    if (v === 0) {
      return "0";
    }
    if (Math.abs(v) >= 100) {
      return v.toFixed(0);
    }
    if (Math.abs(v) >= 1) {
      return v.toFixed(1);
    }
    return v.toPrecision(2);
  }

  function clock(ms) {
    return new Date(ms).toISOString().substring(11, 16);
  }

  // draw renders one chart: axes, a line per series, and a legend that
  // names each series with its latest value.
  function draw(figure, chart) {
    const W = 640, H = 200, L = 56, R = 12, T = 10, B = 26;
    const pts = [];
    chart.series.forEach(function (s) {
      s.points.forEach(function (p) {
        if (p[1] !== null) {
          pts.push(p);
        }
      });
    });
    const now = Date.now();
    const t0 = now - 15 * 60 * 1000;
    let max = 0;
    pts.forEach(function (p) {
      max = Math.max(max, p[1]);
    });
    max = max > 0 ? max * 1.1 : 1;
    const x = function (t) { return L + (Math.max(t, t0) - t0) / (now - t0) * (W - L - R); };
    const y = function (v) { return T + (1 - v / max) * (H - T - B); };

    const latest = chart.series.map(function (s) {
      for (let i = s.points.length - 1; i >= 0; i--) {
        if (s.points[i][1] !== null) {
          return s.points[i][1];
        }
      }
      return null;
    });
    const summary = chart.title + ": " + chart.series.map(function (s, i) {
      return s.label + " " + (latest[i] === null ? "no data yet" : fmt(latest[i]) + " " + chart.unit);
    }).join("; ");

    const el = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": summary, class: "plot" });
    [0, 0.5, 1].forEach(function (f) {
      const v = max * f;
      el.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
      const label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" });
      label.textContent = fmt(v);
      el.appendChild(label);
    });
    [0, 5, 10, 15].forEach(function (m) {
      const t = t0 + m * 60 * 1000;
      const anchor = m === 0 ? "start" : m === 15 ? "end" : "middle";
      const label = svg("text", { x: x(t), y: H - 6, "text-anchor": anchor, class: "axis" });
      label.textContent = clock(t);
      el.appendChild(label);
    });
    chart.series.forEach(function (s, i) {
      let d = "";
      let pen = "M";
      s.points.forEach(function (p) {
        if (p[1] === null || p[0] < t0) {
          pen = "M";
          return;
        }
        d += pen + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1) + " ";
        pen = "L";
      });
      if (d) {
        el.appendChild(svg("path", { d: d, class: "line line-" + i, "stroke-dasharray": dashes[i % dashes.length] }));
      }
    });

    const legend = document.createElement("ul");
    legend.className = "legend";
    chart.series.forEach(function (s, i) {
      const li = document.createElement("li");
      const key = svg("svg", { width: 28, height: 10, "aria-hidden": "true" });
      key.appendChild(svg("line", { x1: 0, x2: 28, y1: 5, y2: 5, class: "line line-" + i, "stroke-dasharray": dashes[i % dashes.length] }));
      li.appendChild(key);
      li.appendChild(document.createTextNode(" " + s.label + ": " +
        (latest[i] === null ? "no data yet" : fmt(latest[i]) + " " + chart.unit)));
      legend.appendChild(li);
    });

    const caption = document.createElement("figcaption");
    caption.textContent = chart.title + " (" + chart.unit + ")";
    figure.replaceChildren(caption, el, legend);
  }

  function update(o) {
    setText(root.querySelector('[data-field="at"]'), o.at);
    setText(root.querySelector('[data-field="error"]'), o.error ? "Last refresh failed: " + o.error : "");
    Object.keys(o.tiles).forEach(function (k) {
      setText(root.querySelector('[data-tile="' + k + '"]'), o.tiles[k]);
    });
    fillBody("#backlog", o.backlog, "Nothing pending.", function (tr, b) {
      cell(tr, b.topic);
      cell(tr, b.pending, "num");
      cell(tr, b.oldest, "num");
    });
    fillBody("#dead-letters", o.dead_letters, "No dead letters.", function (tr, d) {
      const td = cell(tr, "");
      const a = document.createElement("a");
      a.href = d.link;
      a.textContent = d.handler;
      td.appendChild(a);
      cell(tr, d.count, "num");
    });
    const notes = root.querySelector('[data-field="notes"]');
    const items = o.charts.notes.map(function (n) {
      const li = document.createElement("li");
      li.textContent = n;
      return li;
    });
    notes.replaceChildren.apply(notes, items);
    const box = document.getElementById("charts");
    while (box.children.length < o.charts.charts.length) {
      box.appendChild(document.createElement("figure")).className = "chart";
    }
    while (box.children.length > o.charts.charts.length) {
      box.lastElementChild.remove();
    }
    o.charts.charts.forEach(function (c, i) {
      draw(box.children[i], c);
    });
    root.dataset.refreshed = String((parseInt(root.dataset.refreshed, 10) || 0) + 1);
  }

  function refresh() {
    fetch(api, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          throw new Error("HTTP " + r.status);
        }
        return r.json();
      })
      .then(update)
      .catch(function (err) {
        setText(root.querySelector('[data-field="error"]'), "Cannot refresh: " + err.message);
      })
      .finally(function () {
        setTimeout(refresh, every);
      });
  }

  refresh();
})();
