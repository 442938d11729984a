// Render formulas with MathJax 3 (mathjax-full): TeX input with every package except
// noundefined, noerrors and bussproofs, and a formatError that throws -- without it
// MathJax renders an unknown macro in red and never fails. Protocol: read_stdin.js.
"use strict";

const { mathjax } = require("mathjax-full/js/mathjax.js");
const { TeX } = require("mathjax-full/js/input/tex.js");
const { SVG } = require("mathjax-full/js/output/svg.js");
const { liteAdaptor } = require("mathjax-full/js/adaptors/liteAdaptor.js");
const { RegisterHTMLHandler } = require("mathjax-full/js/handlers/html.js");
const { AllPackages } = require("mathjax-full/js/input/tex/AllPackages.js");

const EXCLUDED = ["noundefined", "noerrors", "bussproofs"];
const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
const tex = new TeX({
  packages: AllPackages.filter((name) => !EXCLUDED.includes(name)),
  formatError: (jax, err) => { throw err; },
});
const page = mathjax.document("", { InputJax: tex, OutputJax: new SVG({ fontCache: "none" }) });

require("./read_stdin.js")((formula, display) => page.convert(formula, { display }));
