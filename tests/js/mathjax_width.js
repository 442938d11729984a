// The width of each formula as MathJax 3 typesets it (SVG output), in em: what a page
// of that font size needs. Protocol: a JSON array of {tex, display} on stdin, a JSON
// array of widths (or null where MathJax failed) on stdout.
"use strict";

const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { SVG } = require("mathjax-full/js/output/svg.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");

const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
const tex = new TeX({ packages: AllPackages.filter((name) => name !== "bussproofs") });
const page = mathjax.document("", { InputJax: tex, OutputJax: new SVG({ fontCache: "none" }) });

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const widths = JSON.parse(input).map(({ tex: formula, display }) => {
    try {
      const svg = adaptor.firstChild(page.convert(formula, { display }));
      const box = adaptor.getAttribute(svg, "viewBox").split(/\s+/).map(Number);
      return box[2] / 1000;
    } catch (err) {
      return null;
    }
  });
  process.stdout.write(JSON.stringify(widths));
});
