import { fileURLToPath, URL } from 'node:url'
import { defineConfig } from 'vitest/config'
import vue from '@vitejs/plugin-vue'

// The gateway serves the build from gateway/webapp/ (index.html at /, hashed files under /assets/).
export default defineConfig({
  plugins: [vue()],
  base: '/',
  resolve: { alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) } },
  build: {
    outDir: '../gateway/webapp',
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    // Inline assets would need data: in the CSP; keep every asset a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: { '/graphql': { target: 'http://127.0.0.1:8080', ws: true }, '/api': 'http://127.0.0.1:8080' },
  },
  test: { include: ['tests/**/*.test.ts'], environment: 'node' },
})
