import { defineConfig } from "vite";

// The built viewer ships inside the Python package; the HTTP server serves it from there.
export default defineConfig({
  base: "./",
  build: {
    outDir: "../src/framecast/web",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
  },
  worker: { format: "es" },
});
