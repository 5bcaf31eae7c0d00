// The offline map: an SVG drawn from /api/map (GeoJSON shipped in the repository, reference
// places, vessel positions, alert markers). No tiles, no library. Text goes in with textContent.
"use strict";
const IocMap = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const BBOX = { west: 106.9, south: 15.8, east: 108.5, north: 17.0 };  // the province and its sea
  const WIDTH = 800;
  const kx = Math.cos(((BBOX.south + BBOX.north) / 2) * Math.PI / 180);
  const scale = WIDTH / ((BBOX.east - BBOX.west) * kx);
  const HEIGHT = Math.round((BBOX.north - BBOX.south) * scale);
  const ZONE_COLOURS = ["#6fd0ff", "#ffa0f0", "#a0ffa8", "#ffd27f", "#c0a0ff"];

  function xy(lon, lat) {
    return [((lon - BBOX.west) * kx * scale).toFixed(1), ((BBOX.north - lat) * scale).toFixed(1)];
  }
  function el(name, attrs, parent) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }
  function ringPath(ring) {
    return ring.map((p, i) => (i ? "L" : "M") + xy(p[0], p[1]).join(",")).join("") + "Z";
  }
  function geometryPath(geometry) {
    if (!geometry) return "";
    if (geometry.type === "Polygon") return geometry.coordinates.map(ringPath).join("");
    if (geometry.type === "MultiPolygon") return geometry.coordinates.map((poly) => poly.map(ringPath).join("")).join("");
    if (geometry.type === "LineString") return geometry.coordinates.map((p, i) => (i ? "L" : "M") + xy(p[0], p[1]).join(",")).join("");
    return "";
  }
  function titled(node, text) {
    const title = document.createElementNS(NS, "title");
    title.textContent = text;
    node.appendChild(title);
  }

  function draw(svg, data, onMarker) {
    svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const layers = {};
    for (const name of ["land", "zones", "places", "vessels", "markers"]) layers[name] = el("g", { class: "layer-" + name }, svg);
    if (data.coast) {
      for (const feature of data.coast.features || []) el("path", { class: "land", d: geometryPath(feature.geometry) }, layers.land);
    }
    // The river and the province's outline: lines, with their source and accuracy as a tooltip.
    for (const [name, cls] of [["river", "river"], ["province", "province"]]) {
      for (const feature of (data[name] && data[name].features) || []) {
        const props = feature.properties || {};
        titled(el("path", { class: cls, d: geometryPath(feature.geometry) }, layers.land),
          `${props.name || name} (${props.accuracy || "accuracy unknown"})`);
      }
    }
    (data.zones || []).forEach((collection, i) => {
      for (const feature of collection.features || []) {
        const path = el("path", { class: "zone", d: geometryPath(feature.geometry), stroke: ZONE_COLOURS[i % ZONE_COLOURS.length] }, layers.zones);
        titled(path, String((feature.properties || {}).name || (feature.properties || {}).zone || collection.name));
      }
    });
    for (const place of data.places || []) {
      const [x, y] = xy(place.lon, place.lat);
      const shape = place.kind === "camera"
        ? el("rect", { x: x - 2, y: y - 2, width: 4, height: 4, class: "place place-camera" }, layers.places)
        : el("path", { d: `M${x},${y - 5}L${+x + 5},${+y + 4}L${x - 5},${+y + 4}Z`, class: "place place-" + place.kind }, layers.places);
      titled(shape, `${place.name} (${place.kind})`);
    }
    for (const vessel of data.vessels || []) {
      const [x, y] = xy(vessel.lon, vessel.lat);
      titled(el("circle", { cx: x, cy: y, r: 2, class: "vessel" }, layers.vessels), String(vessel.id));
    }
    // Oldest first, so the newest is drawn on top.
    for (const marker of (data.markers || []).slice().reverse()) {
      const [x, y] = xy(marker.lon, marker.lat);
      const dot = el("circle", { cx: x, cy: y, r: 7, class: "marker sev-" + marker.severity, "data-id": marker.alert_id }, layers.markers);
      titled(dot, String(marker.summary || marker.alert_id));
      dot.addEventListener("click", () => onMarker(marker.alert_id));
    }
  }
  return { draw };
})();
