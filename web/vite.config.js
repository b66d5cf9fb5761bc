import { defineConfig } from 'vite';

// Built into web/dist, which build.rs embeds into the steward binary.
export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    chunkSizeWarningLimit: 2000,
  },
  server: {
    // `npm run dev` proxies the API to a local `steward serve`.
    proxy: { '/api': 'http://127.0.0.1:8080', '/auth': 'http://127.0.0.1:8080' },
  },
});
