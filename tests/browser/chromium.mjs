// The flags every browser test starts headless Chromium with: a fake camera and microphone,
// media on loopback, and none of the background traffic this machine's closed network refuses.
// The server's certificate is self-signed: contexts ignore that for pages, but Chromium still
// refuses to fetch a service worker's script over it without --ignore-certificate-errors.
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required',
  '--allow-loopback-in-peer-connection', '--disable-dev-shm-usage', '--ignore-certificate-errors',
];
