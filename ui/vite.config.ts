import { defineConfig } from "vite";

// The app loads the built files from ui/dist (embedded by the Tauri build).
export default defineConfig({
  clearScreen: false,
  build: { target: "safari15", outDir: "dist", emptyOutDir: true, sourcemap: false },
});
