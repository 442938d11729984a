// Shared by the renderer scripts: read a JSON array of {tex, display} from stdin,
// render each with `render(tex, display)` (which throws on any error), and write a
// JSON array of {ok, error} to stdout, one entry per formula, in order.
"use strict";

module.exports = function run(render) {
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { input += chunk; });
  process.stdin.on("end", () => {
    const results = JSON.parse(input).map(({ tex, display }) => {
      try {
        render(tex, display);
        return { ok: true, error: null };
      } catch (err) {
        return { ok: false, error: String(err && err.message ? err.message : err) };
      }
    });
    process.stdout.write(JSON.stringify(results));
  });
};
