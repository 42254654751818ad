import { defineConfig } from 'vite';

// `npm run dev` serves the console with hot reload and forwards the API to an orchestrator
// (DECLOUD_API, default the one scripts/dev-up.sh starts).
const api = process.env.DECLOUD_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/api': { target: api, ws: true },
      '/healthz': api,
    },
  },
});
