// Render formulas with KaTeX: throwOnError, and strict so that anything KaTeX only
// tolerates fails too (see read_stdin.js for the protocol).
"use strict";

const katex = require("katex");

require("./read_stdin.js")((tex, display) =>
  katex.renderToString(tex, { displayMode: display, throwOnError: true, strict: "error" }));
