"""What the browser tests ask a rendered page: did anything an attacker wrote become markup, does
the layout hold, is the focused element visibly focused, is the text readable."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

# Everything on the page that could run or load something an event put there: inline or
# foreign scripts, event-handler attributes, script URLs in links, frames and objects, forms
# posting elsewhere, and the marker the payloads set if one of them ever ran.
INJECTED = """() => {
  const found = [];
  for (const script of document.scripts) {
    const src = script.getAttribute("src") || "";
    if (!/^\\/static\\/web\\/[\\w.-]+\\.js$/.test(src)) found.push("script " + (src || script.text.slice(0, 60)));
  }
  for (const element of document.querySelectorAll("*")) {
    for (const attribute of element.attributes) {
      if (/^on/i.test(attribute.name)) found.push(`${element.localName}[${attribute.name}]`);
      const url = ["href", "src", "action", "formaction", "xlink:href", "data"].includes(attribute.name);
      const scheme = (/^\\s*([a-z]+):/i.exec(attribute.value) || [])[1] || "";
      // data: is fine for the page's own icon; a link, frame or form may not load one.
      if (url && (/^(javascript|vbscript)$/i.test(scheme) || (/^data$/i.test(scheme) && element.localName !== "link"))) {
        found.push(`${element.localName}[${attribute.name}=${attribute.value.slice(0, 40)}]`);
      }
    }
  }
  for (const link of document.links) {
    if (!["http:", "https:", "mailto:"].includes(link.protocol)) found.push("link " + link.protocol);
  }
  for (const element of document.querySelectorAll("iframe, frame, object, embed, base, meta[http-equiv]")) {
    found.push(element.localName);
  }
  for (const element of document.querySelectorAll("img, svg image, link[rel=stylesheet]")) {
    const url = element.getAttribute("src") || element.getAttribute("href") || "";
    if (!url.startsWith("/static/")) found.push(`${element.localName} ${url.slice(0, 40)}`);
  }
  for (const form of document.forms) {
    if (new URL(form.action, location.href).origin !== location.origin) found.push("form " + form.action);
  }
  if (window.__pwned !== undefined) found.push("payload ran: " + window.__pwned);
  return found;
}"""

# How far the page is wider than the window (a long unbroken string must wrap or scroll in its
# own box, not widen the page), and the elements that stick out or spill, to say which.
OVERFLOW = """() => {
  const excess = document.documentElement.scrollWidth - window.innerWidth;
  const culprits = [];
  if (excess > 0) {
    for (const element of document.body.querySelectorAll("*")) {
      const box = element.getBoundingClientRect();
      const spills = element.scrollWidth > element.clientWidth + 1 && getComputedStyle(element).overflowX === "visible";
      if (box.width > 0 && (spills || box.right > window.innerWidth + 1)) {
        const name = element.localName + (element.className ? "." + String(element.className).replace(/ /g, ".") : "");
        culprits.push(`${name} (${Math.round(box.width)}px wide${spills ? ", its content " + element.scrollWidth + "px" : ""})`);
      }
    }
  }
  return {excess, culprits: culprits.slice(0, 8)};
}"""

# The focused element, described, and whether its focus shows: an outline, or a ring drawn
# with a box-shadow.
FOCUSED = """() => {
  const element = document.activeElement;
  if (!element || element === document.body) return null;
  const style = getComputedStyle(element);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  return {
    tag: element.localName,
    id: element.id,
    name: element.getAttribute("name") || "",
    text: (element.innerText || element.value || element.getAttribute("aria-label") || "").trim().slice(0, 60),
    classes: String(element.className),
    visible: outline || style.boxShadow !== "none",
  };
}"""

# WCAG 2 contrast of each piece of visible text against the background it is drawn on (the
# nearest opaque background up the tree). Large text (24px, or 18.66px bold) needs 3:1, other
# text 4.5:1; disabled controls and text over images are exempt.
CONTRAST = """() => {
  const parse = (value) => (value.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const channel = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (element) => {
    let layers = [];
    for (let node = element; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.backgroundImage !== "none") return null;
      const color = parse(style.backgroundColor);
      const alpha = color.length > 3 ? color[3] : 1;
      if (alpha > 0) layers.push([color.slice(0, 3), alpha]);
      if (alpha >= 1) break;
    }
    let result = [255, 255, 255];
    for (const [color, alpha] of layers.reverse()) {
      result = result.map((c, i) => color[i] * alpha + c * (1 - alpha));
    }
    return result;
  };
  const failures = [];
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let text = walker.nextNode(); text; text = walker.nextNode()) {
    const element = text.parentElement;
    if (!text.textContent.trim() || seen.has(element)) continue;
    seen.add(element);
    const box = element.getBoundingClientRect();
    const style = getComputedStyle(element);
    if (box.width <= 1 || box.height <= 1 || style.visibility === "hidden" || element.closest("[disabled], [aria-hidden=true], details:not([open]) > :not(summary)")) continue;
    const back = background(element);
    if (!back) continue;
    const color = parse(style.color);
    const alpha = color.length > 3 ? color[3] : 1;
    const fore = color.slice(0, 3).map((c, i) => c * alpha + back[i] * (1 - alpha));
    const [light, dark] = [luminance(fore), luminance(back)].sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const where = element.localName + (element.className ? "." + String(element.className).replace(/ /g, ".") : "");
      failures.push(`${where} "${text.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}:1 (${style.color} on rgb(${back.map(Math.round)}))`);
    }
  }
  return failures;
}"""


def injected(page: Page) -> list[str]:
    found: list[str] = page.evaluate(INJECTED)
    return found


def overflow(page: Page) -> dict[str, Any]:
    measured: dict[str, Any] = page.evaluate(OVERFLOW)
    return measured


def focused(page: Page) -> dict[str, Any] | None:
    described: dict[str, Any] | None = page.evaluate(FOCUSED)
    return described


def low_contrast(page: Page) -> list[str]:
    failures: list[str] = page.evaluate(CONTRAST)
    return failures
